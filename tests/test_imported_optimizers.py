"""Any torch.optim.Optimizer subclass by import path ("package.module:Class"): hyperparameters from
its defaults, key steps guessed by name, one clear line when it does not import or is not an
Optimizer, recorded in scripts, typed in the add-lane picker."""

from __future__ import annotations

import argparse
import math

import numpy as np
import pytest
import torch

from sgdtui.cli import main
from sgdtui.engine.commands import AddLane, Nudge
from sgdtui.engine.lane import LaneConfig
from sgdtui.engine.optimizers import KEY_FACTOR, NO_IMPORTS_ENV, OPTIMIZERS, OptimizerConfigError, get_optimizer
from sgdtui.engine.session import Session
from sgdtui.engine.surfaces import DTYPE, SurfaceRegistry
from sgdtui.ui.app import PlaygroundApp
from sgdtui.ui.launch import build_session
from tests.custom_optimizers import SignMomentum

SIGN = "tests.custom_optimizers:SignMomentum"
REGISTRY = SurfaceRegistry(include_user_dir=False)


def write(tmp_path, text: str):
    path = tmp_path / "race.toml"
    path.write_text(text)
    return path


def test_hyperparameters_come_from_defaults_with_steps_guessed_by_name():
    spec = get_optimizer(SIGN)
    assert spec.imported and SIGN not in OPTIMIZERS  # the registry listing stays the built-ins
    assert spec.description.startswith("Sign of an EMA of the gradient")
    by_name = {hp.name: hp for hp in spec.hyper}
    assert list(by_name) == ["lr", "beta", "weight_decay", "warmup", "always", "eps"]  # label (a str) is not steerable
    assert (by_name["lr"].default, by_name["lr"].step) == (0.01, "log")
    assert (by_name["beta"].step, by_name["beta"].high, by_name["beta"].high_open) == ("decay", 1.0, True)
    assert (by_name["weight_decay"].step, by_name["weight_decay"].first) == ("log", 1e-4)
    assert (by_name["warmup"].kind, by_name["always"].kind, by_name["eps"].step) == (int, bool, "log")
    assert spec.decay_param == "beta" and not spec.heavy_ball


def test_torch_classes_by_path_get_float_steps_and_betas_in_log_one_minus_beta():
    adam = {hp.name: hp for hp in get_optimizer("torch.optim:Adam").hyper}
    assert adam["betas"].kind == "pair" and adam["betas"].step == "decay"
    assert adam["weight_decay"].kind is float  # torch writes weight_decay: float = 0
    sgd = get_optimizer("torch.optim:SGD")
    assert sgd.decay_param == "momentum" and sgd.heavy_ball  # an SGD subclass: the temperature's 1/(1-μ)
    assert {hp.name: hp.kind for hp in sgd.hyper}["momentum"] is float


def test_keys_steer_an_imported_lane():
    session = Session({"surface": "himmelblau"}, [LaneConfig.create("s", SIGN, lr=0.02)], registry=REGISTRY)
    session.apply(Nudge("s", "lr", +1))
    session.apply(Nudge("s", "decay", +1))
    session.apply(Nudge("s", "weight_decay", +1))
    hyper = session.race.lane("s").config.hyper
    assert hyper["lr"] == pytest.approx(0.02 * KEY_FACTOR)
    assert math.log(1 - hyper["beta"]) == pytest.approx(math.log(0.1) - math.log(KEY_FACTOR))
    assert hyper["weight_decay"] == 1e-4
    group = session.race.lane("s").optimizer.param_groups[0]
    assert group["beta"] == hyper["beta"] and group["weight_decay"] == 1e-4  # written into torch's param groups


def test_a_script_lane_steps_exactly_like_the_class_itself(tmp_path):
    path = write(tmp_path, f"""version = 1
steps = 120
[problem]
surface = "himmelblau"
[[lanes]]
optimizer = "{SIGN}"
start = [-4.0, 4.0]
lr = 0.03
beta = 0.8
""")
    session = Session.from_script(path, registry=REGISTRY)
    session.run()
    assert session.race.lane_names() == ["signmomentum"]  # default name: the class's
    pos = session.trajectories()["signmomentum"]["pos"][:, 0, :]
    surface = REGISTRY.get("himmelblau")
    p = torch.tensor([[-4.0, 4.0]], dtype=DTYPE, requires_grad=True)
    optimizer = SignMomentum([p], lr=0.03, beta=0.8)
    expected = [p.detach().numpy()[0].copy()]
    for _ in range(120):
        _, p.grad = surface.value_and_grad(p.detach())
        optimizer.step()
        expected.append(p.detach().numpy()[0].copy())
    assert np.array_equal(pos, np.array(expected))


def test_recorded_in_scripts_and_replayed_to_the_bit():
    session = Session({"surface": "rosenbrock"}, [LaneConfig.create("adam", "adam", lr=0.05)], registry=REGISTRY)
    session.advance(20)
    session.apply(AddLane({"optimizer": SIGN, "lr": 0.004, "warmup": 5}))
    session.apply(Nudge("signmomentum", "lr", -1))
    session.advance(50)
    text = session.to_toml()
    assert f'optimizer = "{SIGN}"' in text and "warmup = 5" in text
    replayed = Session.from_script(load_text(text), history_capacity=None)
    replayed.run()
    a, b = session.trajectories()["signmomentum"], replayed.trajectories()["signmomentum"]
    assert np.array_equal(a["pos"], b["pos"]) and np.array_equal(a["lr"], b["lr"])


def load_text(text: str):
    import tomllib

    from sgdtui.engine.script import load_script

    return load_script(tomllib.loads(text), text=text, registry=REGISTRY)


@pytest.mark.parametrize("optimizer, message", [
    ("tests.no_such_module:Opt", "cannot import 'tests.no_such_module' for 'tests.no_such_module:Opt' "
                                 "(ModuleNotFoundError: No module named 'tests.no_such_module')"),
    ("tests.custom_optimizers:SignMomentu", "'tests.custom_optimizers' has no 'SignMomentu'; did you mean 'SignMomentum'?"),
    ("tests.custom_optimizers:NotAnOptimizer", "'tests.custom_optimizers:NotAnOptimizer' is not a torch.optim.Optimizer"
                                               " subclass (it is a class NotAnOptimizer)"),
    ("math:pi", "'math:pi' is not a torch.optim.Optimizer subclass (it is a float)"),
    ("tests.custom_optimizers:NeedsClosure", "'tests.custom_optimizers:NeedsClosure' cannot take a plain step() on a"
                                             " gradient (TypeError: NeedsClosure.step() missing 1 required positional"
                                             " argument: 'closure')"),
    ("tests.custom_optimizers:NoLearningRate", "'tests.custom_optimizers:NoLearningRate' has no numeric 'lr' in its"
                                               " defaults"),
    ("tests.custom optimizers:X", "'tests.custom optimizers:X' is not an import path such as 'package.module:Class'"),
])
def test_refused_with_one_line_naming_the_script_line(optimizer, message, tmp_path, capsys):
    path = write(tmp_path, f'version = 1\nsteps = 5\n[[lanes]]\nname = "x"\noptimizer = "{optimizer}"\n')
    assert main(["replay", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"race.toml:5: lanes[0].optimizer: {message}" in err, err


def test_the_classs_own_checks_name_the_key(tmp_path, capsys):
    path = write(tmp_path, f'version = 1\nsteps = 5\n[[lanes]]\nname = "x"\noptimizer = "{SIGN}"\nwarmup = 80\n')
    assert main(["replay", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert ("race.toml:6: lanes[0].warmup: tests.custom_optimizers:SignMomentum refused it "
            "(ValueError: warmup must be at most 50 steps, got 80)") in err
    path.write_text(f'version = 1\nsteps = 5\n[[lanes]]\nname = "x"\noptimizer = "{SIGN}"\nbeta = 1.5\n')
    assert main(["replay", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "race.toml:6: lanes[0].beta: must be a number in [0, 1), got 1.5" in capsys.readouterr().err


def test_import_paths_can_be_switched_off(monkeypatch):
    monkeypatch.setenv(NO_IMPORTS_ENV, "1")
    with pytest.raises(OptimizerConfigError, match="optimizers by import path are switched off here"):
        get_optimizer("torch.optim:Adagrad")


def test_a_pytorch_optimizer_class_races():
    pytorch_optimizer = pytest.importorskip("pytorch_optimizer", reason="pytorch_optimizer is not installed")
    path = "pytorch_optimizer:Lion"
    spec = get_optimizer(path)
    assert spec.decay_param == "betas" and {"lr", "betas", "weight_decay"} <= set(spec.param_names())
    session = Session({"surface": "booth"}, [LaneConfig.create("lion", path, lr=0.05)], registry=REGISTRY)
    session.advance(200)
    pos = session.trajectories()["lion"]["pos"][:, 0, :]
    surface = REGISTRY.get("booth")
    p = torch.tensor([list(surface.starts[0])], dtype=DTYPE, requires_grad=True)
    optimizer = pytorch_optimizer.Lion([p], lr=0.05)
    for _ in range(200):
        _, p.grad = surface.value_and_grad(p.detach())
        optimizer.step()
    assert np.array_equal(pos[-1], p.detach().numpy()[0])
    start_loss = float(surface.loss(torch.tensor([surface.starts[0]], dtype=DTYPE))[0])
    assert float(np.asarray(session.snapshot().lane("lion").loss).ravel()[0]) < start_loss / 10


async def test_typed_in_the_add_lane_picker():
    ns = argparse.Namespace(surface=None, expr=None, surfaces=[], script=None, record=None, seed=0)
    session, factory = build_session(ns)
    app = PlaygroundApp(session, factory, live_rates=False, worker_kind="thread")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press("a")
        await pilot.pause()
        await pilot.press("tab")  # from the list to the path line
        path_input = app.screen.query_one("#optimizer-path")
        assert path_input.has_focus
        await pilot.press(*"tests.")  # typed keys land in the line (':' and letters are playground keys too)
        assert path_input.value == "tests."
        path_input.value = "tests.custom_optimizers:NotAnOptimizer"
        await pilot.press("enter")
        await pilot.pause()
        error = str(app.screen.query_one("#optimizer-path-error").render())
        assert "is not a torch.optim.Optimizer subclass" in error  # the picker stays open, saying why
        path_input.value = SIGN
        path_input.cursor_position = len(SIGN)
        await pilot.press("colon")
        assert path_input.value == SIGN + ":"  # the palette key types a colon here
        path_input.value = SIGN
        await pilot.press("enter")
        await pilot.pause()
        assert app.worker.wait_idle()
        await pilot.pause()
        app._tick()
        snap = app.worker.latest.snapshot
        assert [lane.optimizer for lane in snap.lanes][-1] == SIGN
        assert app.selected == "signmomentum"


def test_a_module_in_the_current_folder_is_found_by_the_installed_command(tmp_path):
    """The `sgdtui` console script's sys.path starts at its bin folder, not the current one."""
    import subprocess
    import sys
    from pathlib import Path

    command = Path(sys.executable).parent / "sgdtui"
    if not command.exists():
        pytest.skip("no sgdtui console script next to this Python (not an installed environment)")
    (tmp_path / "my_optim.py").write_text(
        "import torch\n\n\nclass Halving(torch.optim.SGD):\n    \"\"\"SGD by another name.\"\"\"\n")
    (tmp_path / "race.toml").write_text('version = 1\nsteps = 20\n[[lanes]]\noptimizer = "my_optim:Halving"\nlr = 0.5\n')
    done = subprocess.run([str(command), "replay", "race.toml", "--quiet"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "halving," in (tmp_path / "race" / "trajectories.csv").read_text()
