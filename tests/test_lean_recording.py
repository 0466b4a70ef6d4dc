"""A big cloud's lean blocks (losses only staged) record what full blocks record, bit for bit."""

import numpy as np

from sgdtui.engine.lane import LaneConfig
from sgdtui.engine.surface_problem import SurfaceProblem
from sgdtui.engine.surface_race import SurfaceRace
from sgdtui.engine.surfaces import SurfaceRegistry


class _Sink:
    """A sink reads every step's positions, so a lane with one stages full blocks."""

    def __init__(self):
        self.rows = 0

    def restart(self, lane):
        pass

    def removed(self, lane):
        pass

    def block(self, lane, steps, pos, loss, lrs):
        assert pos.shape[0] == len(steps)
        self.rows += len(steps)


def _run(sink):
    surface = SurfaceRegistry(include_user_dir=False).get("rosenbrock")
    rng = np.random.default_rng(3)
    starts = tuple(map(tuple, rng.uniform(-2.0, 2.0, size=(2048, 2))))
    lane_config = LaneConfig.create("cloud", "momentum", lr=2e-3, momentum=0.9, starts=starts)
    race = SurfaceRace(SurfaceProblem(surface, {"surface": "rosenbrock"}), [], history_capacity=4096, sink=sink)
    lane = race.add_lane(lane_config)
    kinds = set()
    for _ in range(600):  # several blocks (244 steps each here); trajectories diverge mid-block
        race.step(1)
        kinds.add(lane._lean)
    race.flush()
    return lane, kinds


def test_lean_blocks_record_the_same_history_measures_and_divergences_as_full_blocks():
    sink = _Sink()
    lean, lean_kinds = _run(None)
    full, full_kinds = _run(sink)
    assert lean_kinds == {True} and full_kinds == {False} and sink.rows == 601
    diverged = lean.diverged_at >= 0
    assert 0 < diverged.sum() < lean.n  # some froze, some still run: both paths exercised
    np.testing.assert_array_equal(lean.diverged_at, full.diverged_at)
    np.testing.assert_array_equal(lean.P.numpy(), full.P.numpy())
    a, b = lean.history.snapshot(), full.history.snapshot()
    assert a.keys() == b.keys() and len(a["step"]) > 1
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    for field in ("best", "reached", "tail_sum"):
        np.testing.assert_array_equal(getattr(lean.measures, field), getattr(full.measures, field))
