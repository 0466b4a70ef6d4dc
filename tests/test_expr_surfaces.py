"""Expression surfaces that are not finite everywhere: where their lanes start, which are refused
(one line naming the point) through every entry (--expr, [problem], an event, a surface file,
a switch), that a refused switch changes nothing, and that a trajectory running into a point
with a non-finite gradient is marked diverged like any other."""

from __future__ import annotations

import json
import math

import pytest
import torch

from sgdtui.cli import main
from sgdtui.engine.commands import CommandError, SwitchProblem
from sgdtui.engine.lane import LaneConfig
from sgdtui.engine.optimizers import OPTIMIZERS
from sgdtui.engine.session import Session
from sgdtui.engine.surface_problem import SurfaceProblem
from sgdtui.engine.surface_race import SurfaceRace
from sgdtui.engine.surfaces import ExpressionSurface, SurfaceError, SurfaceRegistry, surface_from_expr
from tests.test_script_errors import check_one_line_error

# Issue 13's examples that no point of the default view can start from.
NOWHERE_FINITE = [
    ("(-1)**(x + y)", "has gradient (nan, nan)"),  # a negative base: d/dy is nan everywhere
    ("e**x + (-e)**y", "has gradient (0.0183"),
    ("x**2 + y**2 + 0/(1e-3)*x/0", "is nan"),     # 0 * inf
    ("log(0)", "is -inf"),
    ("sqrt(-1 - x**2)", "is nan"),
]


def test_a_surface_finite_at_the_upper_left_starts_there():
    assert surface_from_expr("x**2 + y**2").starts == ((-4.0, 4.0),)
    assert surface_from_expr("log(x)", xlim=(1, 3), ylim=(0, 1)).starts == ((1 + 0.1 * 2, 0 + 0.9 * 1),)


@pytest.mark.parametrize("expr, start", [
    ("log(x) + y**2", (1.0, 4.0)),   # nan for x < 0, -inf at 0
    ("0**x + y", (0.0, 4.0)),        # inf for x < 0; d(0**x)/dx = 0 at x = 0 (autograd's)
    ("x**y + y**2", (0.0, 4.0)),     # d(x**y)/dy = x**y log(x) is nan for x < 0
])
def test_otherwise_it_starts_at_the_nearest_finite_tenth_of_the_view(expr, start):
    surface = surface_from_expr(expr)
    assert surface.starts == (start,)
    loss, grad = surface.value_and_grad(surface.start_tensor())
    assert torch.isfinite(loss).all() and torch.isfinite(grad).all()


@pytest.mark.parametrize("expr, what", NOWHERE_FINITE, ids=[e for e, _ in NOWHERE_FINITE])
def test_a_surface_finite_nowhere_in_the_view_is_refused_naming_the_point(expr, what):
    with pytest.raises(SurfaceError) as caught:
        surface_from_expr(expr)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(expr)
    assert what in message and "its start point (-4, 4)" in message and "xlim/ylim" in message


def test_given_start_points_are_kept_and_refused_only_if_none_is_finite():
    with pytest.raises(SurfaceError, match=r"is nan at each of its 2 start points, e\.g\. \(-1, 0\)"):
        surface_from_expr("log(x)", starts=[(-1.0, 0.0), (-2.0, 0.0)])
    surface = surface_from_expr("log(x)", starts=[(-1.0, 0.0), (2.0, 0.0)])
    assert surface.starts == ((-1.0, 0.0), (2.0, 0.0))


def test_a_surface_file_finite_at_no_start_point_is_reported_not_fatal(tmp_path):
    (tmp_path / "bad.toml").write_text('name = "bad"\nexpr = "log(x)"\nstarts = [[-1.0, 1.0]]\n')
    (tmp_path / "good.toml").write_text('name = "good"\nexpr = "log(x)"\nstarts = [[-1.0, 1.0], [1.0, 1.0]]\n')
    registry = SurfaceRegistry([tmp_path], include_user_dir=False)
    assert "good" in registry and "bad" not in registry
    (error,) = registry.errors
    assert "bad.toml: key 'starts': is nan at its start point (-1, 1)" in error


def replay(tmp_path, text: str, capsys) -> tuple[int, str, object]:
    path = tmp_path / "s.toml"
    path.write_text(text)
    rc = main(["replay", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    return rc, capsys.readouterr().err, path


LANE = '[[lanes]]\nname = "gd"\noptimizer = "sgd"\nlr = 0.05\n'


@pytest.mark.parametrize("expr", [e for e, _ in NOWHERE_FINITE[:3]])
def test_such_a_problem_is_an_invalid_script_with_one_line(expr, tmp_path, capsys):
    rc, err, path = replay(tmp_path, f'version = 1\nsteps = 5\n[problem]\nexpr = "{expr}"\n' + LANE, capsys)
    assert rc == 2
    check_one_line_error(err, path, ["problem.expr", "(-4, 4)"], 4)


def test_such_a_switch_in_an_event_is_an_invalid_script_with_one_line(tmp_path, capsys):
    text = ('version = 1\nsteps = 5\n[problem]\nsurface = "himmelblau"\n' + LANE
            + '[[events]]\nstep = 2\nexpr = "(-1)**(x + y)"\n')
    rc, err, path = replay(tmp_path, text, capsys)
    assert rc == 2
    check_one_line_error(err, path, ["events[0].expr", "has gradient (nan, nan) at its start point (-4, 4)"], 11)


def test_issue_13s_lane_from_0_2_on_x_to_the_y_runs_without_diverging(tmp_path, capsys):
    """`x**y + y**2` from (0, 2) was "diverged at 1" at loss 4: the forward-mode d/dy of x**y at
    x = 0 was nan where autograd's is 0. (Once y < 1, d/dx = y x**(y-1) is inf at x = 0 for
    real: gradient descent gets there at step 8.)"""
    text = ('version = 1\nsteps = 6\n[problem]\nexpr = "x**y + y**2"\nxlim = [-1, 3]\nylim = [-1, 3]\n'
            '[[lanes]]\nname = "one"\noptimizer = "sgd"\nlr = 0.05\nstart = [0.0, 2.0]\n'
            '[[lanes]]\nname = "cloud"\noptimizer = "sgd"\nlr = 0.05\nstarts = [[0.0, 2.0], [0.0, 3.0]]\n')
    rc, err, _ = replay(tmp_path, text, capsys)
    assert rc == 0, err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    for lane in summary["lanes"]:
        assert lane["diverged_at"] is None and lane["final_loss"] < 4.0, lane


def test_a_refused_switch_changes_nothing_and_an_accepted_one_moves_every_lane():
    lanes = [LaneConfig.create("a", "sgd", lr=0.01), LaneConfig.create("b", "adam", lr=0.05, starts=((1.0, 1.0),))]
    session = Session({"surface": "himmelblau"}, lanes, history_capacity=None)
    session.advance(3)
    before = (session.problem.to_table(), [lane.positions.tolist() for lane in session.race.lanes], len(session.log))
    for expr in ("(-1)**(x + y)", "log(0)", "x**2 + y**2 + 0/(1e-3)*x/0"):
        with pytest.raises(CommandError, match=r"at its start point \(-4, 4\)"):
            session.apply(SwitchProblem({"expr": expr}))
        after = (session.problem.to_table(), [lane.positions.tolist() for lane in session.race.lanes], len(session.log))
        assert after == before
    # issue 13: in the TUI `0**x+y` moved one lane and left the other on the old surface
    session.apply(SwitchProblem({"expr": "0**x+y"}))
    assert session.problem.to_table() == {"expr": "0**x+y"}
    for lane in session.race.lanes:
        assert lane.surface is session.problem.surface and lane.positions.tolist() == [[0.0, 4.0]]
    session.advance(20)
    assert all(lane.status() != "diverged at 1" and lane.alive.all() for lane in session.race.lanes)


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_a_non_finite_gradient_at_a_finite_loss_is_marked_diverged(optimizer):
    """sqrt(x) at x = 0: the loss is 0, the gradient inf. The step from there leaves the surface
    for every optimizer, so the trajectory is frozen at that point and marked diverged at step 1,
    while the lane's other trajectory goes on."""
    surface = ExpressionSurface(name="pole", description="", expr="sqrt(x) + y**2", starts=((0.0, 1.0), (1.0, 1.0)))
    race = SurfaceRace(SurfaceProblem(surface, {}), [LaneConfig.create(optimizer, optimizer, lr=1e-4)],
                       history_capacity=None)
    race.step(3)
    (lane,) = race.lanes
    assert lane.diverged_at.tolist() == [1, -1]
    assert lane.positions[0].tolist() == [0.0, 1.0] and math.isfinite(float(lane.loss[1]))
    assert lane.status() == "running (1 diverged)"


async def test_the_expression_key_refuses_in_the_box_or_moves_every_lane():
    """issue 13: typing `0**x+y` moved one lane, left the others and paused on "math domain error"."""
    from tests.test_app import SIZE, make_app, settle

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        before = [(lane.name, lane.current.tolist()) for lane in app.worker.latest.snapshot.lanes]
        assert len(before) >= 2
        await pilot.press("e", *"(-1)**(x+y)", "enter")
        error = str(app.screen.query_one("#expr-error").render())
        assert "at its start point (-4, 4)" in error and "\n" not in error
        await pilot.press("escape")
        await settle(app, pilot)
        assert [(lane.name, lane.current.tolist()) for lane in app.worker.latest.snapshot.lanes] == before
        await pilot.press("e", *"0**x+y", "enter")
        await settle(app, pilot)
        await pilot.press(".", ".", ".")
        await settle(app, pilot)
        snap = app.worker.latest.snapshot
        assert snap.payload.surface.expr == "0**x+y" and snap.clock >= 3
        for lane in snap.lanes:
            assert lane.positions[0].tolist() == [[0.0, 4.0]] and not lane.status.startswith("diverged"), lane.status
