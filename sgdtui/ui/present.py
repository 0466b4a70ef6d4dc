"""From a surface Snapshot to what the widgets draw: lane colours, trajectories, loss curves,
table rows, status text (the colours and number formats are shared with MLP mode)."""

from __future__ import annotations


import numpy as np

from sgdtui.engine.optimizers import OPTIMIZERS
from sgdtui.engine.snapshot import LaneSnapshot, Snapshot
from sgdtui.engine.surface_race import SurfaceLaneSnapshot
from sgdtui.ui.formatting import cell, fmt  # noqa: F401 - re-exported
from sgdtui.ui.present_lab import lab_row, lr_preview, sums_text, temperature_text
from sgdtui.ui.widgets.contour import TrajectoryView
from sgdtui.ui.widgets.loss import LossSeries
from sgdtui.ui.widgets.plotting import OKABE_ITO

# Lane colours: the Okabe-Ito set, one (on dark, on light) pair per lane, so paths read on the
# shaded contours in either theme. One RGB triple per lane is handed to plotext and to Rich alike:
# plots, legends and the table match.
LANE_HUES = OKABE_ITO
# Current points differ by glyph too (a second cue besides colour).
LANE_GLYPHS: tuple[str, ...] = ("●", "▲", "■", "◆", "▼", "◀", "▶", "✚")


class LaneColours:
    """A stable colour and glyph per lane name, handed out in order of first appearance;
    ``dark`` picks the shade (the App sets it from the current theme)."""

    def __init__(self, dark: bool = True) -> None:
        self._index: dict[str, int] = {}
        self.dark = dark

    def index(self, name: str) -> int:
        if name not in self._index:
            used = set(self._index.values())
            free = [i for i in range(len(LANE_HUES)) if i not in used]
            self._index[name] = free[0] if free else len(self._index) % len(LANE_HUES)
        return self._index[name]

    def forget_missing(self, names: list[str]) -> None:
        for name in list(self._index):
            if name not in names:
                del self._index[name]

    def plot(self, name: str) -> tuple[int, int, int]:
        """The lane's colour as plotext takes it (an RGB triple)."""
        dark, light = LANE_HUES[self.index(name)]
        return dark if self.dark else light

    def rich(self, name: str) -> str:
        """The same colour as Rich takes it."""
        return "#{:02x}{:02x}{:02x}".format(*self.plot(name))

    def glyph(self, name: str) -> str:
        return LANE_GLYPHS[self.index(name) % len(LANE_GLYPHS)]


def trajectory_views(snapshot: Snapshot, colours: LaneColours, selected: str | None,
                     paths_shown: bool = True) -> list[TrajectoryView]:
    """What the contour pane draws per lane; without ``paths_shown`` (the density view) only the
    current points, so the histogram under them stays readable."""
    views = []
    for lane in snapshot.lanes:
        paths = tuple(lane.positions[:, i, :] for i in range(lane.positions.shape[1])) if paths_shown else ()
        views.append(TrajectoryView(
            name=lane.name, color=colours.plot(lane.name), paths=paths, current=lane.current,
            diverged=~lane.alive, selected=lane.name == selected, glyph=colours.glyph(lane.name),
            flow=lane.flow_path, swa=lane.swa_points,
        ))
    return views


def dimmed(rgb: tuple[int, int, int], dark: bool) -> tuple[int, int, int]:
    """A lane's colour halfway to the background: its SWA curve, its flow reference."""
    background = (30, 30, 30) if dark else (255, 255, 255)
    return tuple(int(0.55 * c + 0.45 * b) for c, b in zip(rgb, background))


def loss_series(snapshot: Snapshot, colours: LaneColours, selected: str | None) -> list[LossSeries]:
    """Each lane's loss curve, and its averaged iterate's (SWA) as a dimmer second curve."""
    series = []
    for lane in snapshot.lanes:
        series.append(LossSeries(lane.name, colours.plot(lane.name), np.asarray(lane.steps, dtype=np.float64),
                                 np.asarray(lane.loss_curve, dtype=np.float64), selected=lane.name == selected,
                                 diverged_at=lane.diverged_at if lane.status.startswith("diverged") else None))
        if lane.swa_loss is not None and len(lane.swa_loss):
            series.append(LossSeries(f"{lane.name} swa", dimmed(colours.plot(lane.name), colours.dark),
                                     np.asarray(lane.swa_steps, dtype=np.float64),
                                     np.asarray(lane.swa_loss, dtype=np.float64)))
    return series


def range_test_series(snapshot: Snapshot, colours: LaneColours, selected: str | None):
    """The range test's picture when the selected lane is on the range-test schedule: loss against
    lr for every range-test lane, and a mark at each one's suggested lr (None: not that view)."""
    lane = next((lane for lane in snapshot.lanes if lane.name == selected), None)
    if lane is None or lane.schedule_name != "range-test":
        return None
    series, marks = [], []
    for other in snapshot.lanes:
        if other.schedule_name != "range-test" or len(other.lrs) < 2:
            continue
        colour = colours.plot(other.name)
        series.append(LossSeries(other.name, colour, np.asarray(other.lrs[1:], dtype=np.float64),
                                 np.asarray(other.loss_curve[1:], dtype=np.float64), selected=other.name == selected,
                                 diverged_at=None))
        if other.range_test is not None and other.range_test.suggested_lr is not None:
            marks.append((other.range_test.suggested_lr, colour))
    return series, marks


def legend_entries(snapshot: Snapshot, colours: LaneColours) -> list[tuple[str, str, str]]:
    return [(lane.name, colours.glyph(lane.name), colours.rich(lane.name)) for lane in snapshot.lanes]


def coupling_text(optimizer: str, hyper: dict, coupling: str) -> str:
    """The coupling in words: "momentum" reads "momentum (μ=0)" for a lane without heavy-ball
    momentum, where η = (1-μ)·B·η₀ is just the linear rule."""
    spec = OPTIMIZERS.get(optimizer)
    if coupling == "momentum" and spec is not None and spec.momentum_of(hyper) == 0.0:
        return "momentum (μ=0)"
    return coupling


# Short forms for the table (the status line spells the selected lane's out in full).
OPTIMIZER_SHORT = {"ema-momentum": "ema-mom", "vanilla-momentum": "van-mom", "adam-nobias": "adam-nb",
                   "adam-centered": "adam-ctr", "adam-minbias": "adam-min", "momentum": "heavyb", "nesterov": "nesterov"}
SCHEDULE_SHORT = {"constant": "—", "step": "step", "multistep": "multi", "exponential": "exp", "inverse-time": "inv-t",
                  "cosine": "cos", "cosine-restarts": "cos-rst", "warmup-cosine": "wu-cos", "cyclic": "cyclic",
                  "one-cycle": "1cycle", "range-test": "range", "plateau": "plateau"}
COUPLING_SHORT = {"none": "—", "linear": "lin", "sqrt": "sqrt", "momentum": "mom"}
STATUS_WIDTH = 12


def status_cell(status: str) -> str:
    """diverged at 1234 -> div. at 1234; running (3 diverged) -> running,3✗."""
    if status.startswith("diverged at "):
        return "div. at " + status.removeprefix("diverged at ")
    if status.endswith(" diverged)"):
        head, _, rest = status.partition(" (")
        return f"{head},{rest.removesuffix(' diverged)')}✗"
    return status


def decay_text(lane: LaneSnapshot) -> str:
    return "—" if lane.decay is None else cell(lane.decay, 6)


def lr_detail(lane: LaneSnapshot) -> str:
    """lr 3.56 = 1.78 × step(100, 0.1) × linear (B = 2): where the effective lr comes from."""
    parts = [f"lr {fmt(lane.effective_lr)}"]
    if lane.effective_lr != lane.base_lr or lane.schedule != "constant" or lane.coupling != "none":
        parts.append(f"= {fmt(lane.base_lr)}")
        if lane.schedule != "constant":
            parts.append(f"× {lane.schedule}")
        if lane.coupling != "none":
            parts.append(f"× {coupling_text(lane.optimizer, lane.hyper, lane.coupling)} (B = {lane.batch})")
    return " ".join(parts)


# (label, width): every column fits 120 terminal columns together, and widths never jump.
SURFACE_COLUMNS = (("lane", 14), ("optim.", 8), ("lr", 7), ("β", 6), ("B", 4), ("λ", 6), ("loss", 7),
                   ("|g|", 6), ("T_G", 6), ("noise", 5), ("cpl.", 4), ("sched.", 7), ("status", STATUS_WIDTH))


# What a narrow terminal gives up first (the status line has the selected lane's in full).
SURFACE_DROP = ("noise", "sched.", "cpl.", "optim.", "λ", "T_G", "|g|", "β")


def surface_rows(snapshot: Snapshot) -> dict[str, list[str]]:
    """The lanes table's cells after each lane's name (see SURFACE_COLUMNS)."""
    return {lane.name: [OPTIMIZER_SHORT.get(lane.optimizer, lane.optimizer), cell(lane.effective_lr, 7),
                        decay_text(lane), cell(lane.batch, 4), cell(lane.hyper.get("weight_decay"), 6),
                        lane_loss_text(lane), lane_grad_text(lane), temperature_cell(lane), cell(lane.noise, 5),
                        COUPLING_SHORT.get(lane.coupling, lane.coupling),
                        SCHEDULE_SHORT.get(lane.schedule_name, lane.schedule_name), status_cell(lane.status)]
            for lane in snapshot.lanes}


def temperature_cell(lane: LaneSnapshot) -> str:
    """The lane's Gibbs temperature ('-' where none is defined), '!' when its step is past the
    stability limit at its point (the coupling rules stop holding there)."""
    text = "-" if lane.gibbs_temperature is None else cell(lane.gibbs_temperature, 5 if lane.warnings else 6)
    return text + ("!" if any(w.startswith("lr·λmax") for w in lane.warnings) else "")


def lane_loss_text(lane: SurfaceLaneSnapshot) -> str:
    finite = lane.loss[np.isfinite(lane.loss)]
    return cell(float(finite.min()), 7) if finite.size else "inf"


def lane_grad_text(lane: SurfaceLaneSnapshot) -> str:
    g = lane.grad_norm[lane.alive] if lane.alive.any() else lane.grad_norm
    finite = g[np.isfinite(g)]
    return cell(float(finite.max()), 6) if finite.size else "nan"


def run_parts(snapshot: Snapshot, *, running: bool, speed: str, steps_per_second: float | None,
              frames_per_second: float | None) -> list[str]:
    """The status line's first row: problem, step, run state and rates."""
    state = "running" if running else "paused"
    sps = "—" if steps_per_second is None else f"{steps_per_second:,.0f}"
    fps = "—" if frames_per_second is None else f"{frames_per_second:.0f}"
    return [snapshot.label, f"step {snapshot.step}", f"{state} ({speed})", f"{sps} steps/s", f"{fps} frames/s"]


def status_text(snapshot: Snapshot, *, selected: str | None, running: bool, speed: str,
                steps_per_second: float | None, frames_per_second: float | None) -> str:
    """Two rows: the run, then the selected lane (optimizer, where its lr comes from, temperature,
    the Hessian at its point and what that says)."""
    head = " · ".join(run_parts(snapshot, running=running, speed=speed, steps_per_second=steps_per_second,
                                frames_per_second=frames_per_second))
    lane = next((lane for lane in snapshot.lanes if lane.name == selected), None)
    if lane is None:
        return head
    if lane.hessian is not None:
        hessian = lane.hessian.describe()
    else:  # a newly selected lane's read-out comes with the next snapshot
        hessian = "Hessian: n/a (diverged)" if not lane.alive.any() else "Hessian: …"
    detail = [f"▶ {lane.name} ({lane.optimizer})", lr_detail(lane), lr_preview(lane), temperature_text(lane),
              sums_text(lane), hessian]
    lab = lab_row(lane)
    return head + "\n" + " · ".join(p for p in detail if p) + ("\n" + lab if lab else "")


def anatomy_text(anatomy) -> str:
    """next: -η∇L (gx, gy) + optimizer (ex, ey) = (ux, uy), gain per axis."""
    scale = max(abs(v) for v in anatomy.update + anatomy.gradient_step) or 1.0

    def pair(v) -> str:  # rounding noise (1e-17 of a plain GD step) reads as 0
        return "(" + ",".join("0" if abs(x) < 1e-9 * scale else fmt(x, 2) for x in v) + ")"
    return f"next: −η∇L {pair(anatomy.gradient_step)} + opt {pair(anatomy.extra)} = {pair(anatomy.update)}"
