"""The in-place gradient programs compute a surface's loss and gradient bit for bit, and a lane's
trajectories do not depend on how many others step with them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sgdtui.engine.fastgrad import build_program
from sgdtui.engine.lane import LaneConfig
from sgdtui.engine.surface_problem import SurfaceProblem
from sgdtui.engine.surface_race import SurfaceRace
from sgdtui.engine.surfaces import SurfaceRegistry, surface_from_expr

REGISTRY = SurfaceRegistry(include_user_dir=False)
EXPRESSIONS = ["x*y", "x", "3.0 + 0*x", "min(x, y) + max(x, 1)", "relu(x) + softplus(y)", "x**y + y**2",
               "abs(x)**1.5 + sqrt(abs(y) + 1)", "log(x*x + 1) / (1 + y*y)", "x**3 - 2*x*y", "exp(-x*x) * cos(3*y)"]
SURFACES = [s for s in REGISTRY if not s.data_driven] + [surface_from_expr(e) for e in EXPRESSIONS]


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return bool(((a == b) | (a.isnan() & b.isnan())).all())


@pytest.mark.parametrize("surface", SURFACES, ids=[s.expr for s in SURFACES])
def test_the_program_computes_the_surfaces_numbers_bit_for_bit(surface):
    n = 48
    params = torch.empty(2, n, dtype=torch.float64)
    loss, grad = torch.empty(n, dtype=torch.float64), torch.empty(2, n, dtype=torch.float64)
    program = build_program(surface, params, loss, grad)
    assert program is not None and len(program) > 0
    gen = torch.Generator().manual_seed(3)
    for _ in range(3):  # the same buffers, new points: nothing is baked in
        params.copy_(torch.rand(2, n, generator=gen, dtype=torch.float64) * 8 - 4)
        program.run()
        want_loss, want_grad = surface.value_and_grad(params.T)
        assert same(loss, want_loss) and same(grad, want_grad.T)


def test_a_trajectory_is_the_same_in_a_cloud_of_any_size():
    surface = REGISTRY.get("pathological")  # sigmoid and softplus-like kernels round differently in a tail
    problem = SurfaceProblem(surface, {"surface": "pathological"})
    runs = []
    for n in (2, 5, 37):
        starts = ((-4.0, 5.0),) + tuple((0.1 * k, 1.0) for k in range(1, n))
        race = SurfaceRace(problem, [LaneConfig.create("a", "adam", lr=0.1, starts=starts)])
        race.step(60)
        runs.append(race.lane("a").positions[0])
    assert all(np.array_equal(runs[0], r) for r in runs[1:])


def test_an_op_repeated_on_the_same_inputs_runs_once():
    from sgdtui.engine import expr
    from sgdtui.engine.fastgrad import _eliminate_common_subexpressions, _trace

    surface = SurfaceRegistry(include_user_dir=False).get("pathological")  # tanh(x)**2 + ...
    params = torch.zeros(2, 1024, dtype=torch.float64)
    expr.PATCH.on = False
    try:
        graph = _trace(surface.value_and_grad, params.T).graph
    finally:
        expr.PATCH.on = True

    def squares_of_tanh():
        return [n for n in graph.nodes if n.op == "call_function" and n.target == torch.ops.aten.mul.Tensor
                and len(n.args) == 2 and n.args[0] is n.args[1] and getattr(n.args[0], "name", "").startswith("tanh")]

    assert len(squares_of_tanh()) == 2  # forward mode squares it for the loss and for the derivative
    before = len(graph.nodes)
    _eliminate_common_subexpressions(graph)
    assert len(squares_of_tanh()) == 1 and len(graph.nodes) == before - 1


@pytest.mark.parametrize("name", ["pathological", "rosenbrock", "double-well"])
def test_a_small_cloud_switching_to_the_program_mid_run_keeps_every_bit(monkeypatch, name):
    from sgdtui.engine import surface_race

    surface = REGISTRY.get(name)
    problem = SurfaceProblem(surface, {"surface": name})
    starts = tuple((-1.0 + 0.05 * k, 0.5 + 0.03 * k) for k in range(40))

    steps = surface_race.PROGRAM_AFTER + 50

    def run():
        race = SurfaceRace(problem, [LaneConfig.create("a", "momentum", lr=2e-4, momentum=0.9, starts=starts,
                                                       noise=0.5)])
        race.step(steps)
        lane = race.lane("a")
        return lane, lane.history.snapshot()

    switched, switched_rows = run()
    monkeypatch.setattr(surface_race, "PROGRAM_AFTER", 10**9)
    called, called_rows = run()
    assert switched._program is not None and called._program is None
    for key in switched_rows:
        np.testing.assert_array_equal(switched_rows[key], called_rows[key])


def test_common_subexpressions_leave_outputs_in_place_ops_and_random_ops_alone():
    from torch.fx.experimental.proxy_tensor import make_fx

    from sgdtui.engine.fastgrad import _eliminate_common_subexpressions

    def calls(fn, *args):
        graph = make_fx(fn, tracing_mode="fake")(*args).graph
        _eliminate_common_subexpressions(graph)
        return [n for n in graph.nodes if n.op == "call_function"]

    x = torch.zeros(8, dtype=torch.float64)

    def mutated(x):
        a, b = torch.zeros_like(x), torch.zeros_like(x)
        a.add_(x)
        return a + b

    assert sum(n.target == torch.ops.aten.zeros_like.default for n in calls(mutated, x)) == 2
    assert sum(n.target == torch.ops.aten.randn.default for n in calls(lambda x: torch.randn(8) + torch.randn(8) + x, x)) == 2
    # the loss equal to a gradient row (-exp(x)): each keeps its node, so the program keeps its buffers
    loss_is_a_row = calls(lambda w: ((-w[:, 0].exp()), torch.stack([-w[:, 0].exp(), w[:, 1] * 0.0], 1)),
                          torch.zeros(8, 2, dtype=torch.float64))
    assert sum(n.target == torch.ops.aten.neg.default for n in loss_is_a_row) == 2
    surface = surface_from_expr("-exp(x)")
    params = torch.zeros(2, 1024, dtype=torch.float64)
    assert build_program(surface, params, torch.empty(1024, dtype=torch.float64), torch.empty(2, 1024, dtype=torch.float64)) is not None
