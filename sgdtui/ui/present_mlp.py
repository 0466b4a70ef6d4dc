"""From an Snapshot to what the MLP screen draws: loss and accuracy curves, table rows, status."""

from __future__ import annotations

import numpy as np

from sgdtui.engine.snapshot import Snapshot
from sgdtui.mlp.snapshot import MLPLaneSnapshot
from sgdtui.ui.present import STATUS_WIDTH, LaneColours, cell, decay_text, fmt, lr_detail, run_parts, status_cell
from sgdtui.ui.widgets.loss import LossSeries

TRAIN_SMOOTHING = 20  # steps in the moving mean of the (noisy) minibatch loss
VAL_COLOUR = "white"
SWA_COLOUR = "yellow"  # the averaged weights' curves (SWA)
RULE_COLOURS = {"floor": "green", "steepest": "yellow", "valley": "cyan"}  # a range test's suggestions
COLLAPSED = "⚠"  # a normalized layer whose ||W|| collapsed (table mark)

# (label, width): fits 120 terminal columns; optimizer, schedule, coupling and T_G of the selected
# lane are in the status line.
MLP_COLUMNS = (("lane", 14), ("lr", 7), ("β", 6), ("B", 4), ("λ", 6), ("T", 6), ("train", 6), ("val", 6),
               ("acc", 5), ("‖w‖", 5), ("η/‖w‖²", 7), ("λη", 6), ("E‖ĝ−g‖²", 7), ("status", STATUS_WIDTH))


MLP_DROP = ("λη", "T", "η/‖w‖²", "λ", "β", "‖w‖", "E‖ĝ−g‖²", "train")


def moving_mean(values: np.ndarray, window: int = TRAIN_SMOOTHING) -> np.ndarray:
    """Trailing mean over up to ``window`` values (the first ones average what there is);
    a non-finite value poisons only the windows that contain it."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0 or window <= 1:
        return values
    with np.errstate(invalid="ignore", over="ignore"):
        sums = np.concatenate([[0.0], np.cumsum(values)])
        counts = np.minimum(np.arange(1, len(values) + 1), window)
        starts = np.arange(1, len(values) + 1) - counts
        return (sums[1:] - sums[starts]) / counts


def mlp_loss_series(snapshot: Snapshot, colours: LaneColours, selected: str | None) -> list[LossSeries]:
    """Every lane's train loss (moving mean of minibatch losses), plus the selected lane's
    validation loss in white: the gap between the two is the overfitting read-out."""
    series = [
        LossSeries(lane.name, colours.plot(lane.name), np.asarray(lane.steps, dtype=np.float64),
                   moving_mean(lane.train_loss), selected=lane.name == selected)
        for lane in snapshot.lanes
    ]
    for lane in snapshot.lanes:
        if lane.name == selected and len(lane.eval_steps):
            series.append(LossSeries(f"{lane.name} val", VAL_COLOUR, np.asarray(lane.eval_steps, dtype=np.float64),
                                     np.asarray(lane.val_loss, dtype=np.float64)))
        if lane.name == selected and lane.swa_steps is not None and len(lane.swa_steps):
            series.append(LossSeries(f"{lane.name} swa val", SWA_COLOUR, np.asarray(lane.swa_steps, dtype=np.float64),
                                     np.asarray(lane.swa_loss, dtype=np.float64)))
    return series


def swa_note(snapshot: Snapshot, selected: str | None) -> str:
    """The legend's note on the white (and yellow) curves of the selected lane."""
    if not selected:
        return ""
    lane = next((lane for lane in snapshot.lanes if lane.name == selected), None)
    note = f"white: {selected} val loss"
    if lane is not None and lane.swa_steps is not None:
        note += f" · yellow: its SWA average ({lane.swa_count} weights)"
    return note


def intrinsic_series(snapshot: Snapshot, colours: LaneColours, selected: str | None) -> tuple[list[LossSeries], str]:
    """η/‖W‖² over the evaluations, a curve per lane and normalized layer (in the lane's colour):
    lanes with the same lr·λ settle at the same height after O(1/(lr·λ)) steps."""
    series = []
    for lane in snapshot.lanes:
        if lane.eval_norm_sq is None or not len(lane.eval_steps):
            continue
        steps = np.asarray(lane.eval_steps, dtype=np.float64)
        names = [layer.name for layer in lane.layers if layer.normalized]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios = np.asarray(lane.eval_lr, dtype=np.float64)[:, None] / np.asarray(lane.eval_norm_sq)
        for k, name in enumerate(names):
            series.append(LossSeries(f"{lane.name} {name}", colours.plot(lane.name), steps, ratios[:, k],
                                     selected=lane.name == selected))
    label = "η/‖W‖² per normalized layer" if series else "η/‖W‖²: no normalized layer (o switches the norm)"
    return series, label


def range_test_view(snapshot: Snapshot, colours: LaneColours,
                    selected: str | None) -> tuple[list[LossSeries], list[tuple[float, str]], str] | None:
    """The selected range-test lane's smoothed loss against lr (and any other range-test lane's),
    the suggestions of each rule as vertical marks, and a title naming them; None when the
    selected lane is not a range test."""
    lane = next((lane for lane in snapshot.lanes if lane.name == selected), None)
    if lane is None or getattr(lane, "range_curve", None) is None:
        return None
    series = [LossSeries(other.name, colours.plot(other.name), np.asarray(other.range_curve[0], dtype=np.float64),
                         np.asarray(other.range_curve[1], dtype=np.float64), selected=other.name == selected)
              for other in snapshot.lanes if getattr(other, "range_curve", None) is not None]
    marks, words = [], []
    reading = lane.range_test
    if reading is not None:
        for rule, value in reading.suggestions.items():
            if value is not None:
                marks.append((value, RULE_COLOURS[rule]))
                words.append(f"{rule} {fmt(value)} ({RULE_COLOURS[rule]})")
    title = f"{lane.name} range test · " + (" · ".join(words) if words else "no suggestion yet") + " · R applies"
    return series, marks, title


def layer_lines(lane: MLPLaneSnapshot | None) -> str:
    """The selected lane's per-layer read-outs: ‖W‖, ‖g‖ of the latest minibatch, η/‖W‖² of a
    normalized layer (⚠ collapsed) and the LARS/LAMB trust ratio."""
    if lane is None:
        return ""
    rows = [f"{'layer':<13}{'‖W‖':>8}{'‖g‖':>9}{'η/‖W‖²':>9}{'trust':>8}"]
    for layer in lane.layers:
        name = layer.name.removesuffix(".weight") + (" norm" if layer.normalized else "")
        mark = COLLAPSED if layer.collapsed else ""
        effective = "—" if layer.effective_lr is None else mark + fmt(layer.effective_lr)
        rows.append(f"{name:<13}{fmt(layer.weight_norm):>8}{fmt(layer.grad_norm):>9}{effective:>9}"
                    f"{fmt(layer.trust_ratio):>8}")
    return "\n".join(rows)


def mlp_metric_series(snapshot: Snapshot, colours: LaneColours,
                      selected: str | None) -> tuple[list[LossSeries], str]:
    """Validation accuracy per lane (classification) or validation loss (regression), and its label."""
    regression = snapshot.payload.task == "regression"
    series = [
        LossSeries(lane.name, colours.plot(lane.name), np.asarray(lane.eval_steps, dtype=np.float64),
                   np.asarray(lane.val_loss if regression else lane.val_acc, dtype=np.float64),
                   selected=lane.name == selected)
        for lane in snapshot.lanes
    ]
    for lane in snapshot.lanes:  # the selected lane's averaged weights (SWA), in yellow
        if lane.name == selected and lane.swa_steps is not None and len(lane.swa_steps):
            series.append(LossSeries(f"{lane.name} swa", SWA_COLOUR, np.asarray(lane.swa_steps, dtype=np.float64),
                                     np.asarray(lane.swa_loss if regression else lane.swa_acc, dtype=np.float64)))
    return series, ("val loss" if regression else "val accuracy")


def last(values: np.ndarray) -> float | None:
    values = np.asarray(values, dtype=np.float64)
    return float(values[-1]) if values.size else None


def lane_row(lane: MLPLaneSnapshot, grad_noise: float | None, regression: bool = False) -> list[str]:
    """The table cells after the lane's name (see MLP_COLUMNS); a metric that does not apply
    (accuracy of a regression, η/‖w‖² without a normalized layer) reads "—"."""
    collapsed = [layer for layer in lane.layers if layer.collapsed]
    if collapsed:  # the collapsed layer's figure, marked, never a blank
        norm_lr = COLLAPSED + cell(collapsed[0].effective_lr, 6)
    else:
        norm_lr = "—" if lane.norm_effective_lr is None else cell(min(lane.norm_effective_lr), 7)
    train = moving_mean(lane.train_loss[-TRAIN_SMOOTHING:]) if len(lane.train_loss) else np.empty(0)
    accuracy = None if regression else last(lane.val_acc)
    return [cell(lane.effective_lr, 7), decay_text(lane), cell(lane.batch, 4), cell(lane.weight_decay, 6),
            cell(lane.temperature, 6), cell(last(train), 6), cell(last(lane.val_loss), 6), cell(accuracy, 5),
            cell(lane.weight_norm, 5), norm_lr, cell(lane.intrinsic_lr, 6), cell(grad_noise, 7),
            status_cell(lane.status)]


def mlp_rows(snapshot: Snapshot, grad_noise: dict[str, float]) -> dict[str, list[str]]:
    """The lanes table's cells after each lane's name; ``grad_noise``: the latest estimate per lane."""
    regression = snapshot.payload.task == "regression"
    return {lane.name: lane_row(lane, grad_noise.get(lane.name), regression) for lane in snapshot.lanes}


def problem_label(snapshot: Snapshot) -> str:
    p = snapshot.payload
    hidden = ",".join(str(h) for h in p.hidden)
    norm = "" if p.norm == "none" else f" {p.norm}"
    return f"{snapshot.label} ({hidden} {p.activation}{norm}) on {p.device}"


def mlp_status_text(snapshot: Snapshot, *, selected: str | None, running: bool, speed: str,
                    steps_per_second: float | None, frames_per_second: float | None) -> str:
    parts = run_parts(snapshot, running=running, speed=speed, steps_per_second=steps_per_second,
                      frames_per_second=frames_per_second)
    parts[0] = problem_label(snapshot)
    head = " · ".join(parts)
    regression = snapshot.payload.task == "regression"
    lane = next((lane for lane in snapshot.lanes if lane.name == selected), None)
    if lane is None:
        return head
    metric = "val loss" if regression else "val acc"
    value = last(lane.val_loss) if regression else last(lane.val_acc)
    detail = [f"▶ {lane.name} ({lane.optimizer})", *(f"⚠ {warning}" for warning in lane.warnings), lr_detail(lane),
              f"T {fmt(lane.temperature)}", f"T_G {fmt(lane.gibbs_temperature)}",
              f"Σlr {fmt(lane.sum_lr)} Σlr² {fmt(lane.sum_lr2)}", f"{metric} {fmt(value)}"]
    if lane.swa_steps is not None:
        swa = last(lane.swa_loss) if regression else last(lane.swa_acc)
        detail.append(f"SWA {metric} {fmt(swa)}")
    if lane.range_test is not None and lane.range_test.suggested_lr is not None:
        detail.append(f"range test: lr {fmt(lane.range_test.suggested_lr)} (R applies)")
    return head + "\n" + " · ".join(detail)
