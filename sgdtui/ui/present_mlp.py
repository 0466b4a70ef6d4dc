"""From an MLPSnapshot to what the MLP screen draws: loss and accuracy curves, table rows, status."""

from __future__ import annotations

import numpy as np

from sgdtui.mlp.race import MLPLaneSnapshot, MLPSnapshot
from sgdtui.ui.present import LaneColours, coupling_text, fmt
from sgdtui.ui.widgets.loss import LossSeries

TRAIN_SMOOTHING = 20  # steps in the moving mean of the (noisy) minibatch loss
VAL_COLOUR = "white"

MLP_COLUMNS = ("lane", "optimizer", "lr (eff.)", "β", "batch", "λ", "train", "val", "acc", "‖w‖", "η/‖w‖²",
               "λη", "E‖ĝ−g‖²", "temp.", "status", "schedule", "coupling")


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


def mlp_loss_series(snapshot: MLPSnapshot, colours: LaneColours, selected: str | None) -> list[LossSeries]:
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
    return series


def mlp_metric_series(snapshot: MLPSnapshot, colours: LaneColours,
                      selected: str | None) -> tuple[list[LossSeries], str]:
    """Validation accuracy per lane (classification) or validation loss (regression), and its label."""
    regression = snapshot.task == "regression"
    series = [
        LossSeries(lane.name, colours.plot(lane.name), np.asarray(lane.eval_steps, dtype=np.float64),
                   np.asarray(lane.val_loss if regression else lane.val_acc, dtype=np.float64),
                   selected=lane.name == selected)
        for lane in snapshot.lanes
    ]
    return series, ("val loss" if regression else "val accuracy")


def last(values: np.ndarray) -> float | None:
    values = np.asarray(values, dtype=np.float64)
    return float(values[-1]) if values.size else None


def lane_row(lane: MLPLaneSnapshot, grad_noise: float | None) -> list[str]:
    """The table cells after the lane's name (see MLP_COLUMNS)."""
    lr = fmt(lane.effective_lr)
    if lane.effective_lr != lane.base_lr:
        lr = f"{lr} ({fmt(lane.base_lr)})"
    beta = "—" if lane.decay is None else fmt(lane.decay, 4)
    norm_lr = "—" if lane.norm_effective_lr is None else " ".join(fmt(v) for v in lane.norm_effective_lr)
    train = moving_mean(lane.train_loss[-TRAIN_SMOOTHING:]) if len(lane.train_loss) else np.empty(0)
    return [lane.optimizer, lr, beta, str(lane.batch), fmt(lane.weight_decay), fmt(last(train)),
            fmt(last(lane.val_loss)), fmt(last(lane.val_acc)), fmt(lane.weight_norm), norm_lr,
            fmt(lane.intrinsic_lr), fmt(grad_noise), fmt(lane.temperature), lane.status, lane.schedule,
            coupling_text(lane.optimizer, lane.hyper, lane.coupling)]


def problem_label(snapshot: MLPSnapshot) -> str:
    problem = snapshot.problem
    hidden = ",".join(str(h) for h in problem.hidden)
    norm = "" if problem.norm == "none" else f" {problem.norm}"
    return f"{problem.name} ({hidden} {problem.activation}{norm}) on {snapshot.device}"


def mlp_status_text(snapshot: MLPSnapshot, *, selected: str | None, running: bool, speed: str,
                    steps_per_second: float | None, frames_per_second: float | None) -> str:
    state = "running" if running else "paused"
    sps = "—" if steps_per_second is None else f"{steps_per_second:,.0f}"
    fps = "—" if frames_per_second is None else f"{frames_per_second:.0f}"
    parts = [problem_label(snapshot), f"step {snapshot.clock}", f"{state} ({speed})", f"{sps} steps/s",
             f"{fps} frames/s"]
    for lane in snapshot.lanes:
        if lane.name == selected:
            metric = "val loss" if snapshot.task == "regression" else "val acc"
            value = last(lane.val_loss) if snapshot.task == "regression" else last(lane.val_acc)
            parts.append(f"▶ {lane.name}: {metric} {fmt(value)}, ‖w‖ {fmt(lane.weight_norm)}")
    return " · ".join(parts)
