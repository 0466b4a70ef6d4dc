"""The Lab in MLP mode: the intrinsic learning rate (equal lr * weight decay, equal equilibrium
lr/||W||^2), collapsed normalized layers, per-layer read-outs and trust ratios, SWA lanes, the
temperatures, the range test and the partial sums of lr, each checked against its definition."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from sgdtui.cli import main
from sgdtui.engine.commands import CommandError, SetLane
from sgdtui.engine.lane import LaneConfig
from sgdtui.engine.rangetest import read_range_test
from sgdtui.engine.session import Session
from sgdtui.mlp.lab import COLLAPSE_FRACTION, is_collapsed
from sgdtui.engine.script import load_script
from sgdtui.mlp.problem import MLPProblem

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def problem(**overrides) -> MLPProblem:
    base = dict(dataset="moons", hidden=(16, 16), norm="batchnorm", n=400, noise=0.3, device="cpu", eval_every=10)
    return MLPProblem(**{**base, **overrides})


def session(lanes, **overrides) -> Session:
    return Session(problem(**overrides), lanes, history_capacity=None)


# ---- the intrinsic learning rate -------------------------------------------------------------


def equilibrium(evals: dict, from_step: int) -> float:
    """The time average of lr/||W||^2 over the evaluations from ``from_step`` on, per normalized
    layer, then the geometric mean over the layers."""
    late = evals["step"] >= from_step
    ratios = (evals["lr"][late, None] / evals["norm_sq"][late]).mean(axis=0)
    return float(np.exp(np.log(ratios).mean()))


def test_equal_lr_times_weight_decay_reach_the_same_equilibrium_lr_over_norm_squared():
    """For scale-invariant weights (feeding BatchNorm) SGD with weight decay settles where
    lr/||W||^2 = sqrt(2 lr lambda)/||g~||: it depends on lr * lambda alone, reached after
    O(1/(lr lambda)) steps (the norm's relaxation time 1/(4 lr lambda) = 62 steps here; ~400 steps
    from the initial norm). Two lanes with lr * lambda = 0.004 at lrs 2x apart must agree within
    15 %, about 3 standard deviations of what remains: the head and BatchNorm's affine parameters
    are not scale invariant and feel lambda itself, and a time average over 450 steps is noisy
    (measured over seeds 0, 1, 2: 6.7 %, 3.6 %, 0.1 % apart). A lane with 4x the lr * lambda must
    sit at least sqrt(4) = 2x higher (the theory at equal gradient noise; a hotter lane is noisier,
    which only raises it; measured 5-8x). Starting points differ 2x (lr/||W_0||^2)."""
    torch.set_num_threads(1)
    lesson = load_script(EXAMPLES / "mlp-intrinsic-lr.toml")  # its first three lanes, 900 of its steps
    assert [(lane.hyper["lr"], lane.hyper["weight_decay"]) for lane in lesson.lanes[:3]] == [
        (0.2, 0.02), (0.4, 0.01), (0.4, 0.04)]
    run = Session(lesson.problem, list(lesson.lanes[:3]), seed=lesson.seed, history_capacity=None)
    run.advance(900)
    evals = run.race.evaluations()
    start = {name: float(ev["lr"][0] / ev["norm_sq"][0].mean()) for name, ev in evals.items()}
    a, b, hot = (equilibrium(evals[lane.name], 450) for lane in lesson.lanes[:3])
    first, second = (start[lane.name] for lane in lesson.lanes[:2])
    assert second / first == pytest.approx(2.0, rel=1e-6)  # apart at the start ...
    assert abs(a - b) / math.sqrt(a * b) < 0.15  # ... together at equilibrium
    assert hot > 2.0 * max(a, b)


def test_a_collapsed_normalized_layer_is_flagged_not_blank(tmp_path):
    lanes = [LaneConfig.create("s", "sgd", lr=0.1, batch=16), LaneConfig.create("t", "sgd", lr=0.1, batch=16)]
    run = session(lanes)
    run.advance(5)
    with torch.no_grad():
        run.race.trainer.module(0)[0].weight.mul_(COLLAPSE_FRACTION / 2)  # ||W|| at 0.5 % of its start
        run.race.trainer.module(1)[0].weight.zero_()  # exactly 0: lr/||W||^2 is inf
    run.race._record_eval()
    snap = run.snapshot()
    s, t = snap.lane("s"), snap.lane("t")
    assert [layer.collapsed for layer in s.layers] == [True, False, False]
    assert s.warnings == ("0.weight collapsed (‖W‖ < 1% of its start)",)
    assert t.layers[0].effective_lr == math.inf and t.layers[0].collapsed
    out = tmp_path / "out"
    run.race.write_outputs(out.mkdir() or out)
    rows = [r for r in csv.DictReader(open(out / "metrics.csv")) if r["step"] == "5" and r["val_loss"]]
    by_lane = {r["lane"]: r for r in rows[-2:]}
    assert by_lane["s"]["collapsed"] == "0.weight" and float(by_lane["s"]["effective_lr"]) > 0
    assert by_lane["t"]["effective_lr"] == "inf" and by_lane["t"]["collapsed"] == "0.weight"
    assert run.race.summary()["lanes"][1]["collapsed"] == ["0.weight"]
    from sgdtui.ui.present_mlp import lane_row, mlp_status_text

    assert lane_row(s, None)[9].startswith("⚠")  # the η/‖w‖² cell
    assert "⚠ 0.weight collapsed" in mlp_status_text(snap, selected="s", running=False, speed="1x",
                                                       steps_per_second=None, frames_per_second=None)
    assert not is_collapsed(1.0, 1.0) and is_collapsed(float("nan"), 1.0)


def test_per_layer_readouts_and_trust_ratios_follow_their_definitions():
    lanes = [LaneConfig.create("lars", "lars", lr=0.05, batch=32, weight_decay=1e-3),
             LaneConfig.create("lamb", "lamb", lr=0.01, batch=32, weight_decay=1e-2),
             LaneConfig.create("sgd", "sgd", lr=0.1, batch=32)]
    run = session(lanes)
    assert all(layer.grad_norm is None for layer in run.snapshot().lanes[0].layers)  # no step yet
    run.advance(7)
    snap = run.snapshot()
    trainer = run.race.trainer
    for index, lane in enumerate(snap.lanes):
        assert [layer.name for layer in lane.layers] == ["0.weight", "3.weight", "6.weight"]
        assert [layer.normalized for layer in lane.layers] == [True, True, False]
        for layer in lane.layers:
            weight = dict(trainer.module(index).named_parameters())[layer.name]
            assert layer.weight_norm == pytest.approx(float(weight.detach().norm()), rel=1e-6)
            assert layer.grad_norm == pytest.approx(float(weight.grad.norm()), rel=1e-6)
            if layer.normalized:
                assert layer.effective_lr == pytest.approx(lane.effective_lr / float(weight.detach().pow(2).sum()), rel=1e-5)
            else:
                assert layer.effective_lr is None
    lars = snap.lane("lars").layers[2]
    assert lars.trust_ratio == pytest.approx(lars.weight_norm / (lars.grad_norm + 1e-3 * lars.weight_norm + 1e-8),
                                             rel=1e-5)
    # LAMB's ratio from its moments, recomputed here from the optimizer's state.
    optimizer = trainer.optimizer(1)
    weight = trainer.module(1)[6].weight
    state = optimizer.state[weight]
    t = float(state["step"])
    r = (state["exp_avg"] / (1 - 0.9 ** t)) / ((state["exp_avg_sq"] / (1 - 0.999 ** t)).sqrt() + 1e-6) + 1e-2 * weight
    assert snap.lane("lamb").layers[2].trust_ratio == pytest.approx(float(weight.detach().norm() / r.detach().norm()),
                                                                    rel=1e-5)
    assert all(layer.trust_ratio is None for layer in snap.lane("sgd").layers)


def vmapped_gradient_noise(trainer, index: int, seed: int) -> float:
    """The reference estimate: per-probe gradients by vmapping torch.func.grad over the same
    minibatches the probe draws, against the full-training-set gradient."""
    from torch.func import grad, vmap

    lane = trainer._lanes[index]
    k, batch = trainer.NOISE_PROBES, lane.setup.batch
    params = {name: p.detach() for name, p in zip(trainer._param_names, lane.params)}
    rows = torch.randint(0, trainer.n_train, (k, batch), generator=torch.Generator().manual_seed(seed))
    probe_buffers = {name: b.expand(k, *b.shape).clone() for name, b in zip(trainer._buffer_names, lane.buffers)}
    full_buffers = {name: b.clone() for name, b in zip(trainer._buffer_names, lane.buffers)}
    trainer._template.train()
    loss_grad = grad(trainer._functional_loss)
    minibatch = vmap(loss_grad, in_dims=(None, 0, 0, 0))(params, probe_buffers, trainer.x_train[rows],
                                                        trainer.y_train[rows])
    full = loss_grad(params, full_buffers, trainer.x_train, trainer.y_train)
    squared = sum((minibatch[n] - full[n]).pow(2).reshape(k, -1).sum(dim=1) for n in trainer._param_names)
    return float(squared.mean())


def test_gradient_noise_probe_matches_the_vmapped_reference_and_is_zero_at_full_batch():
    run = session([LaneConfig.create("s", "sgd", lr=0.1, batch=8), LaneConfig.create("gd", "sgd", lr=0.1, batch=320)])
    run.advance(3)
    trainer = run.race.trainer
    reference = vmapped_gradient_noise(trainer, 0, 11)
    assert reference > 0
    assert float(trainer.probe_gradient_noise(0, 11)) == pytest.approx(reference, rel=1e-5)
    assert float(trainer.probe_gradient_noise(1, 11)) == 0.0  # batch = the training set: the full gradient


def test_full_batch_lanes_take_the_full_gradient():
    run = session([LaneConfig.create("gd", "sgd", lr=0.1, batch=320)], norm="none")
    trainer = run.race.trainer
    before = trainer._lanes[0].generator.get_state()
    run.advance(1)
    module = trainer.module(0)
    assert torch.equal(trainer._lanes[0].generator.get_state(), before)  # nothing sampled
    # One GD step from the initial weights, done by hand on the whole training set.
    from sgdtui.mlp.model import build_mlp

    reference = build_mlp(trainer.config, trainer.init_seed)
    loss = trainer._loss(reference(trainer.x_train), trainer.y_train)
    loss.backward()
    with torch.no_grad():
        for p in reference.parameters():
            p.sub_(0.1 * p.grad)
    for mine, theirs in zip(module.parameters(), reference.parameters()):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-7)


# ---- temperatures ----------------------------------------------------------------------------


def test_temperatures_of_mlp_lanes():
    lanes = [LaneConfig.create("adam", "adam", lr=0.01, batch=16),
             LaneConfig.create("hb", "momentum", lr=0.05, momentum=0.9, batch=20),
             LaneConfig.create("sgld", "sgld", lr=0.01, temperature=0.02, batch=320),
             LaneConfig.create("sgld-mb", "sgld", lr=0.01, temperature=0.02, batch=32),
             LaneConfig.create("lars", "lars", lr=0.05, batch=32)]
    run = session(lanes)
    first = {lane.name: lane for lane in run.snapshot().lanes}
    assert first["adam"].temperature is None  # no second moment yet
    assert first["hb"].temperature == pytest.approx(0.05 / 20 / (1 - 0.9))
    run.advance(6)
    snap = run.snapshot()
    optimizer = run.race.trainer.optimizer(0)
    v_hat = torch.cat([(optimizer.state[p]["exp_avg_sq"] / (1 - 0.999 ** float(optimizer.state[p]["step"])))
                       .reshape(-1).double() for group in optimizer.param_groups for p in group["params"]])
    # The step lr / (sqrt(v_hat) + eps) averaged with weights v_hat (dead units, v_hat = 0, take no noise).
    weighted = float((v_hat * 0.01 / (v_hat.sqrt() + 1e-8)).sum() / v_hat.sum())
    assert snap.lane("adam").temperature == pytest.approx(weighted / 16, rel=1e-6)
    assert float((0.01 / (v_hat.sqrt() + 1e-8)).mean()) / 16 > 2 * snap.lane("adam").temperature  # a plain mean
    assert snap.lane("adam").gibbs_temperature is None  # minibatch noise: no Gibbs density
    assert snap.lane("sgld").gibbs_temperature == pytest.approx(0.02)  # full batch: SGLD's own T
    assert snap.lane("sgld-mb").gibbs_temperature is None
    assert snap.lane("lars").temperature is None and snap.lane("lars").gibbs_temperature is None
    summary = {lane["lane"]: lane for lane in run.race.summary()["lanes"]}
    assert summary["sgld"]["gibbs_temperature"] == pytest.approx(0.02)
    assert summary["hb"]["temperature"] == pytest.approx(0.05 / 20 / (1 - 0.9))
    assert summary["adam"]["gibbs_temperature"] is None


# ---- partial sums of lr -------------------------------------------------------------------------


def test_sum_lr_and_sum_lr2_follow_the_schedule_and_restart_with_the_lane():
    lane = LaneConfig.create("s", "sgd", lr=0.5, batch=16, schedule={"name": "step", "step_size": 4, "gamma": 0.5})
    run = session([lane])
    run.advance(10)
    lrs = run.race.trajectories()["s"]["lr"]
    snap = run.snapshot().lane("s")
    assert snap.sum_lr == pytest.approx(float(lrs.sum()), rel=1e-12)
    assert snap.sum_lr2 == pytest.approx(float((lrs ** 2).sum()), rel=1e-12)
    assert run.race.summary()["lanes"][0]["sum_lr"] == snap.sum_lr
    from sgdtui.engine.commands import Reset

    run.apply(Reset())
    assert run.snapshot().lane("s").sum_lr == 0.0


# ---- SWA ---------------------------------------------------------------------------------------


def test_swa_lane_averages_its_weights_from_step_k_with_batchnorm_recomputed():
    k, steps = 4, 12
    run = session([LaneConfig.create("swa", "momentum", lr=0.1, momentum=0.9, batch=16, swa={"start": k})])
    trainer = run.race.trainer
    seen = []
    for step in range(1, steps + 1):
        run.advance(1)
        if step >= k:
            seen.append(trainer.flat_weights(0))
    lane = run.race.lanes[0]
    assert lane.swa.count == steps - k + 1
    averaged = torch.cat([p.detach().reshape(-1) for p in lane.swa.model.module.parameters()])
    torch.testing.assert_close(averaged, torch.stack(seen).mean(dim=0), rtol=1e-5, atol=1e-6)
    # Evaluation: BatchNorm statistics of the averaged weights over the whole training set.
    values = lane.swa.evaluate(trainer.x_train, trainer.x_val, trainer.y_val, trainer._loss, True)
    net = lane.swa.model.module
    pre = net[0](trainer.x_train)
    torch.testing.assert_close(net[1].running_mean, pre.mean(dim=0), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(net[1].running_var, pre.var(dim=0, unbiased=True), rtol=1e-4, atol=1e-6)
    net.eval()
    with torch.no_grad():
        out = net(trainer.x_val)
    assert float(values[0]) == pytest.approx(float(trainer._loss(out, trainer.y_val)), rel=1e-6)
    assert float(values[1]) == pytest.approx(float((out.argmax(1) == trainer.y_val).float().mean()))
    snap = run.snapshot().lane("swa")
    assert snap.swa_steps.tolist() == [10] and snap.swa_count == steps - k + 1  # evaluated every 10 steps
    entry = run.race.summary()["lanes"][0]["swa"]
    assert entry["start"] == k and entry["averaged"] == steps - k + 1 and entry["final_loss"] > 0


def test_swa_switched_on_by_an_event_replays_to_the_same_bytes(tmp_path, capsys):
    run = Session(problem(), [LaneConfig.create("a", "sgd", lr=0.2, batch=16),
                              LaneConfig.create("b", "adam", lr=0.01, batch=16)], history_capacity=None)
    run.advance(15)
    run.apply(SetLane("a", {"swa": {"start": 15}}))  # what W sends: from the current step
    run.advance(20)
    run.apply(SetLane("a", {"swa": False}))
    run.apply(SetLane("b", {"swa": {"start": 25}}))
    run.advance(15)
    script = tmp_path / "swa.toml"
    script.write_text(run.to_toml())
    for out in ("x", "y"):
        assert main(["replay", str(script), "--out", str(tmp_path / out), "--quiet"]) == 0
    first = (tmp_path / "x" / "metrics.csv").read_bytes()
    assert first == (tmp_path / "y" / "metrics.csv").read_bytes()
    rows = list(csv.DictReader(first.decode().splitlines()))
    a_swa = [int(r["step"]) for r in rows if r["lane"] == "a" and r["swa_val_loss"]]
    b_swa = [int(r["step"]) for r in rows if r["lane"] == "b" and r["swa_val_loss"]]
    # b's start (25) lies before the step its option arrived at (35): it averages from 35 on.
    assert a_swa == [20, 30] and b_swa == [40, 50]
    summary = json.loads((tmp_path / "x" / "summary.json").read_text())
    assert "swa" not in summary["lanes"][0] and summary["lanes"][1]["swa"]["averaged"] == 16


def test_mlp_lanes_refuse_surface_only_options():
    run = session([LaneConfig.create("a", "sgd", lr=0.1, batch=16)])
    with pytest.raises(CommandError, match="flow"):
        run.apply(SetLane("a", {"flow": True}))
    with pytest.raises(CommandError, match="burn_in"):
        run.apply(SetLane("a", {"burn_in": 10}))


# ---- the range test ----------------------------------------------------------------------------


def test_range_test_lane_reads_its_exact_ramp():
    ramp = {"name": "range-test", "lr_min": 1e-3, "lr_max": 3.0, "total_steps": 60}
    run = session([LaneConfig.create("rt", "adam", lr=1e-3, batch=32, schedule=ramp),
                   LaneConfig.create("other", "sgd", lr=0.1, batch=32)], norm="none")
    run.advance(80)  # 20 steps past the ramp: held at lr_max, not part of the test
    history = run.race.trajectories()["rt"]
    expected = read_range_test(history["lr"][:60], history["train_loss"][:60])
    snap = run.snapshot()
    reading = snap.lane("rt").range_test
    assert reading.suggestions == expected.suggestions and reading.suggested_lr is not None
    assert snap.lane("other").range_test is None
    lrs, curve = snap.lane("rt").range_curve
    assert lrs[0] == pytest.approx(1e-3) and len(lrs) == len(curve) <= 60
    entry = run.race.summary()["lanes"][0]
    assert entry["suggested_lr"] == expected.suggested_lr and entry["suggestions"] == expected.suggestions


# ---- the lessons' claims ------------------------------------------------------------------------


def test_the_swa_lesson_average_beats_the_bouncing_iterate():
    """examples/mlp-swa.toml: at a constant lr, the average's validation loss from step 300 on is
    below the iterate's (measured: ~0.30 against ~0.32 on average) and its final accuracy above
    the iterate's average accuracy there (~0.90 against ~0.87)."""
    torch.set_num_threads(1)
    lesson = load_script(EXAMPLES / "mlp-swa.toml")
    lane = lesson.lanes[0]
    assert lane.swa_start == 300 and lane.schedule == "constant"
    run = Session(lesson.problem, [lane], seed=lesson.seed, history_capacity=None)
    run.advance(lesson.steps)
    ev = run.race.evaluations()[lane.name]
    late = ev["step"] >= 300
    assert ev["swa_on"][late].all() and not ev["swa_on"][~late].any()
    assert ev["swa_loss"][late].mean() < 0.95 * ev["val_loss"][late].mean()
    assert ev["swa_acc"][-1] > ev["val_acc"][late].mean()


def test_the_range_test_lesson_suggestion_and_its_payoff():
    """examples/mlp-lr-range-test.toml: the sweep's default suggestion is the 0.028 its event
    writes (within the rounding to two digits), and adam at that lr fits the spirals better in
    300 steps than adam at 1e-3."""
    torch.set_num_threads(1)
    lesson = load_script(EXAMPLES / "mlp-lr-range-test.toml")
    run = Session.from_script(lesson, history_capacity=None)
    run.advance(400)
    suggested = run.snapshot().lane("range-test").range_test.suggested_lr
    assert suggested == pytest.approx(0.028, abs=0.0005)
    run.run()
    summary = {lane["lane"]: lane for lane in run.race.summary()["lanes"]}
    assert summary["adam-suggested"]["final_val_acc"] > summary["adam-1e-3"]["final_val_acc"] + 0.05


# ---- the keys ------------------------------------------------------------------------------------


async def test_lab_keys_in_mlp_mode():
    """i: the intrinsic-lr view and the per-layer panel; W: SWA on from the current step, then off;
    R: the range test's suggestion to every other lane; the table's T column and the status line."""
    from tests.test_mlp_app import SIZE, settle

    from sgdtui.engine.commands import Step
    from sgdtui.ui.app import PlaygroundApp
    from sgdtui.ui.widgets.loss import LossPlot
    from sgdtui.ui.widgets.status import StatusLine

    ramp = {"name": "range-test", "lr_min": 1e-3, "lr_max": 3.0, "total_steps": 60}
    lanes = [LaneConfig.create("sgd", "sgd", lr=0.1, batch=16), LaneConfig.create("adam", "adam", lr=0.01, batch=16),
             LaneConfig.create("rt", "adam", lr=1e-3, batch=32, schedule=ramp)]
    app = PlaygroundApp(Session(problem(), lanes), live_rates=False, costly_period=None, worker_kind="thread")
    async with app.run_test(size=SIZE) as pilot:
        app.worker.submit(Step(60))
        await settle(app, pilot)
        assert "Σlr 6 Σlr² 0.6" in app.query_one(StatusLine).text and "T_G —" in app.query_one(StatusLine).text
        await pilot.press("i")
        await settle(app, pilot)
        assert app.view.has_class("intrinsic") and app.query_one("#mlp-layers").display
        plot = app.query_one("#train-loss", LossPlot)
        assert len(plot._series) == 6 and plot.y_label == "η/‖W‖² per normalized layer"  # 3 lanes x 2 layers
        layers = str(app.query_one("#mlp-layers").render())
        assert "0 norm" in layers and "3 norm" in layers and "6 " in layers
        await pilot.press("i")
        await pilot.press("W")  # on the selected lane (sgd), from its step 60
        await settle(app, pilot)
        assert app.worker._session.race.lane("sgd").config.swa_start == 60
        app.worker.submit(Step(20))
        await settle(app, pilot)
        assert app.worker.latest.snapshot.lane("sgd").swa_count == 21
        assert "swa val" in [s.name.split(" ", 1)[1] for s in app.query_one("#train-loss", LossPlot)._series
                             if " " in s.name]
        await pilot.press("W")
        await settle(app, pilot)
        assert app.worker._session.race.lane("sgd").config.swa_start is None
        await pilot.press("R")  # the selected lane runs no range test: the first one that does
        await settle(app, pilot)
        suggested = app.worker.latest.snapshot.lane("rt").range_test.suggested_lr
        assert suggested is not None
        race = app.worker._session.race
        assert race.lane("sgd").config.hyper["lr"] == race.lane("adam").config.hyper["lr"] == suggested
        app.selected = "rt"
        app._dirty = True
        await settle(app, pilot)
        plot = app.query_one("#train-loss", LossPlot)
        assert plot._x_log and len(plot._marks) >= 1 and "range test" in plot._title
