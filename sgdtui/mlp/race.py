"""MLP races: the same lanes (optimizer, hyperparameters, schedule, batch, coupling) training
copies of one small MLP on a 2-D dataset, stepped together by ``MLPTrainer``.

Per-step numbers stay on the device: each step's minibatch losses are copied into a device
staging buffer, and every ``eval_every`` steps the validation loss/accuracy and weight norms are
staged too; ``flush()`` (called when a snapshot is taken) syncs them to the host in one go.
"""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from sgdtui.engine.commands import CommandError, Query
from sgdtui.engine.history import History
from sgdtui.engine.lane import LaneConfig, LaneSteering, lane_seed
from sgdtui.engine.race import Race
from sgdtui.engine.snapshot import Snapshot
from sgdtui.mlp.model import LaneSetup, MLPConfig, MLPTrainer, resolve_device
from sgdtui.mlp.snapshot import LossSlice, MLPLaneSnapshot, MLPPayload

if TYPE_CHECKING:
    from sgdtui.mlp.problem import MLPProblem

STAGE = 256
GRID_RES = 60
METRICS_COLUMNS = ("lane", "step", "train_loss", "val_loss", "val_acc", "lr", "weight_norm", "effective_lr")


class MLPLane(LaneSteering):
    """Steering state of one lane; its weights and optimizer live in the race's trainer."""

    def __init__(self, race: "MLPRace", config: LaneConfig):
        self.race = race
        self.config = config
        self.wall_time = 0.0
        self.reset_state()

    def reset_state(self) -> None:
        self.t = 0
        self.start_schedule()
        self.diverged_at: int | None = None
        cap = self.race.history_capacity
        self.history = History({"train_loss": (), "lr": ()}, capacity=cap, dtype=np.float64)
        self.evals = History({"val_loss": (), "val_acc": (), "weight_norm": (), "norm_sq": ()}, capacity=cap)
        self.weights_path: list[np.ndarray] = []  # flattened weights every eval, for PCA slices
        self.best_val = math.inf  # the best finite validation loss since the lane (re)started
        self.effective_lr = self.compute_lr()

    @property
    def index(self) -> int:
        return self.race.lanes.index(self)

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self.race.trainer.optimizer(self.index)

    def apply_config(self, new: LaneConfig) -> None:
        if new.batch != self.config.batch:  # the trainer checks the batch against the data set first
            self.race.trainer.set_batch(self.index, new.batch)
        super().apply_config(new)

    @property
    def weight_decay(self) -> float:
        return float(self.config.hyper.get("weight_decay", 0.0))

    def status(self) -> str:
        if self.diverged_at is not None:
            return f"diverged at {self.diverged_at}"
        return "running" if self.t else "ready"


class MLPRace(Race):
    """All MLP lanes stepping together, one batched forward/backward per step."""

    def __init__(self, problem: "MLPProblem", lanes: list[LaneConfig] = (), seed: int = 0,
                 history_capacity: int | None = 4096):
        self.seed = seed
        self.history_capacity = history_capacity
        self.sink: "_MetricsRows | None" = None  # streamed replays (engine/replay.py)
        self.lanes: list[MLPLane] = []
        self._build(problem)
        for cfg in lanes:
            self.add_lane(cfg)

    def _build(self, problem: "MLPProblem") -> None:
        self.problem = problem
        self.dataset = problem.make_dataset()
        self.model_config = MLPConfig.for_dataset(
            self.dataset, hidden=problem.hidden, activation=problem.activation, norm=problem.norm
        )
        self.device = resolve_device(problem.device)
        self.step_count = 0
        self._new_trainer()

    def _new_trainer(self) -> None:
        self.trainer = MLPTrainer(self.dataset, self.model_config, [], init_seed=self.problem.init_seed, device=self.device)
        self._stage_loss: list[list[torch.Tensor]] = []  # per step: each lane's 0-d loss tensor (on the device)
        self._stage_lr: list[list[float]] = []
        self._stage_eval: list[tuple[int, int, torch.Tensor]] = []  # (lane index, its step, eval row)

    def _setup(self, cfg: LaneConfig) -> LaneSetup:
        spec = cfg.spec
        hyper = cfg.optimizer_hyper()
        opt_gen = torch.Generator(device=self.device).manual_seed(lane_seed(self.seed, cfg.name, "optimizer") >> 2)

        def make_optimizer(params):
            # lars/lamb: per_row=False, so each parameter tensor (a layer) gets its own trust ratio.
            return spec.make(params, hyper, generator=opt_gen, per_row=False)

        return LaneSetup(name=cfg.name, make_optimizer=make_optimizer, batch=cfg.batch,
                         seed=lane_seed(self.seed, cfg.name, "batches") >> 2)

    # --- steering (the Race interface) -----------------------------------------------------
    def add_lane(self, config: LaneConfig) -> MLPLane:
        self._check_new_name(config)
        if config.starts is not None:
            raise ValueError("MLP lanes have no start points (all lanes start from the same initial weights)")
        self.flush()
        self.trainer.add_lane(self._setup(config))
        lane = MLPLane(self, config)
        self.lanes.append(lane)
        if self.sink is not None:
            self.sink.stream.restart(lane)
        self._record_eval(lanes=[lane])
        return lane

    def remove_lane(self, name: str) -> None:
        lane = self.lane(name)
        self.flush()
        self.trainer.remove_lane(lane.index)
        self.lanes.remove(lane)
        if self.sink is not None:
            self.sink.stream.removed(lane)

    def reset(self) -> None:
        """Every lane back to the shared initial weights, optimizer state and RNG streams fresh."""
        self.set_problem(self.problem)

    def set_problem(self, problem: "MLPProblem") -> None:
        """Another dataset or network: the lanes keep their settings and restart on it."""
        configs = [lane.config for lane in self.lanes]
        if self.sink is not None:
            for lane in self.lanes:
                self.sink.stream.removed(lane)
        self._build(problem)
        self.lanes = []
        for cfg in configs:
            self.add_lane(cfg)

    # --- stepping ---------------------------------------------------------------------------
    def step(self, n: int = 1) -> None:
        clock = time.perf_counter
        for _ in range(n):
            if not self.lanes:
                self.step_count += 1
                continue
            started = clock()
            lrs = []
            for lane in self.lanes:
                # A diverged lane keeps stepping (its NaNs stay its own): marking it happens in
                # flush(), and nothing that flush timing decides may feed back into the numbers.
                lr = lane.compute_lr()
                lane.effective_lr = lr
                for group in lane.optimizer.param_groups:
                    group["lr"] = lr
                lrs.append(lr)
            self.trainer.step()
            if len(self._stage_lr) == STAGE:
                self.flush()
            # Keep references only: stacking (and the host sync) waits for flush().
            self._stage_loss.append(self.trainer.last_loss_tensors())
            self._stage_lr.append(lrs)
            for lane in self.lanes:
                lane.t += 1
            self.step_count += 1
            if self.step_count % self.problem.eval_every == 0:
                self._record_eval()
            spent = (clock() - started) / len(self.lanes)
            for lane in self.lanes:
                lane.wall_time += spent

    def _record_eval(self, lanes: list[MLPLane] | None = None) -> None:
        """Stage validation metrics (on the device) and the weights for PCA slices."""
        table = self.trainer.device_eval()
        for lane in (lanes or self.lanes):
            i = lane.index
            self._stage_eval.append((i, lane.t, table[i]))
            if len(lane.weights_path) >= 400:  # bounded: keep every other recorded point
                lane.weights_path = lane.weights_path[::2]
            lane.weights_path.append(self.trainer.flat_weights(i))

    def flush(self) -> None:
        """Sync staged per-step numbers to the host histories; mark lanes whose loss went non-finite."""
        k = len(self._stage_lr)  # one staged entry per step
        trained: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        if k:
            losses = torch.stack([torch.stack(row) for row in self._stage_loss]).double().cpu().numpy()
            lrs = np.asarray(self._stage_lr, dtype=np.float64)
            for i, lane in enumerate(self.lanes):
                first = lane.t - k + 1
                col = losses[:, i]
                steps = np.arange(first, first + k)
                lane.history.append_block(steps, train_loss=col, lr=lrs[:, i])
                trained[i] = (steps, col, lrs[:, i])
                if lane.diverged_at is None and not np.isfinite(col).all():
                    lane.diverged_at = int(first + np.argmax(~np.isfinite(col)))
        self._stage_lr, self._stage_loss = [], []
        evaluated: dict[int, list[tuple[int, np.ndarray]]] = {}
        if self._stage_eval:
            rows = torch.stack([row for _, _, row in self._stage_eval]).double().cpu().numpy()
            for (i, t, _), row in zip(self._stage_eval, rows):
                if i < len(self.lanes):
                    lane = self.lanes[i]
                    lane.evals.append(t, val_loss=row[0], val_acc=row[1], weight_norm=row[2], norm_sq=row[3])
                    if math.isfinite(row[0]):
                        lane.best_val = min(lane.best_val, float(row[0]))
                    evaluated.setdefault(i, []).append((t, row))
            self._stage_eval = []
        if self.sink is not None:
            for i, lane in enumerate(self.lanes):
                self.sink.block(lane, trained.get(i), evaluated.get(i, []))
        for lane in self.lanes:
            if lane.weights_path and isinstance(lane.weights_path[-1], torch.Tensor):
                lane.weights_path = [w.cpu().numpy() if isinstance(w, torch.Tensor) else w for w in lane.weights_path]

    # --- read-outs ----------------------------------------------------------------------------
    def snapshot(self, version: int, clock: int, *, selected: str | None = None, max_rows: int | None = 2000,
                 costly: bool = True, grid_res: int = GRID_RES) -> Snapshot:
        """Every lane's curves and latest evaluation; the prediction grid of ``selected`` (or the
        first lane); the gradient-noise estimate (extra forward/backward passes) only when ``costly``."""
        self.flush()
        metrics = self.trainer.metrics(gradient_noise=costly)
        lanes = []
        for i, lane in enumerate(self.lanes):
            hist = lane.history.snapshot(max_rows)
            ev = lane.evals.snapshot(max_rows)
            eff = metrics["effective_lr"][i]
            lanes.append(MLPLaneSnapshot(
                **lane.readout(), status=lane.status(), diverged_at=lane.diverged_at, steps=hist["step"],
                loss_curve=hist["train_loss"], lrs=hist["lr"], weight_decay=lane.weight_decay,
                train_loss=hist["train_loss"], eval_steps=ev["step"], val_loss=ev["val_loss"], val_acc=ev["val_acc"],
                weight_norm=float(metrics["weight_norm"][i]),
                # eta/||W||^2 with the lane's effective lr (the trainer's figure uses the group lr)
                norm_effective_lr=None if eff is None else tuple(
                    lane.effective_lr * e / metrics["lr"][i] if metrics["lr"][i] else math.nan for e in eff),
                intrinsic_lr=lane.effective_lr * lane.weight_decay,
                grad_noise=None if metrics["grad_noise"][i] is None else float(metrics["grad_noise"][i]),
            ))
        data = self.dataset
        x = data.x_train.numpy()
        xlim, ylim = data_view(x)
        names = self.lane_names()
        target = selected if selected in names else (names[0] if names else None)
        grid = None
        if target is not None:
            if data.task == "regression":
                ys = data.y_train.numpy()[:, 0]
                ylim = (float(ys.min() - 0.3), float(ys.max() + 0.3))
            grid = self.trainer.predict_grid(names.index(target), xlim, ylim, grid_res)
        problem = self.problem
        payload = MLPPayload(
            dataset=problem.dataset, hidden=problem.hidden, activation=problem.activation, norm=problem.norm,
            device=str(self.device), task=data.task, n_classes=data.n_classes, x_train=x,
            y_train=data.y_train.numpy(), x_val=data.x_val.numpy(), y_val=data.y_val.numpy(), boundary_lane=target,
            grid_xlim=xlim, grid_ylim=ylim, grid=grid,
            data_key=(problem.dataset, problem.n, problem.noise, problem.data_seed, problem.classes),
        )
        return Snapshot(version=version, clock=clock, step=self.step_count, kind=problem.kind, label=problem.label, table=problem.to_table(), lanes=tuple(lanes),
                        payload=payload)

    def trajectories(self) -> dict[str, dict[str, np.ndarray]]:
        """Per lane: 'step', 'train_loss', 'lr' per step."""
        self.flush()
        return {lane.config.name: lane.history.snapshot() for lane in self.lanes}

    def evaluations(self) -> dict[str, dict[str, np.ndarray]]:
        """Per lane 'step', 'val_loss', 'val_acc', 'weight_norm', 'norm_sq' every eval_every steps."""
        self.flush()
        return {lane.config.name: lane.evals.snapshot() for lane in self.lanes}

    def answer(self, query: Query) -> Any:
        if isinstance(query, LossSlice):
            from sgdtui.mlp.landscape import compute_slice  # torch.func work, only when asked

            self.flush()
            try:
                lane = self.lane(query.lane)
            except KeyError as exc:
                raise CommandError(exc.args[0]) from None
            return compute_slice(self.trainer, lane.index, lane.name, query.directions, lane.weights_path, step=lane.t)
        return super().answer(query)

    # --- headless output ------------------------------------------------------------------------
    def write_outputs(self, out: Path) -> list[str]:
        """metrics.csv: one row per lane and step. Step k >= 1 holds the minibatch loss and lr of
        update k; val_loss, val_acc, weight_norm and effective_lr (lr / ||W||^2 of the first
        normalized layer) are filled every eval_every steps (and at step 0), empty otherwise."""
        histories = self.trajectories()
        evals = self.evaluations()
        with open(Path(out) / "metrics.csv", "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(METRICS_COLUMNS)
            for name, hist in histories.items():
                ev = evals[name]
                by_step = {int(t): k for k, t in enumerate(ev["step"].tolist())}
                lr_of = dict(zip(hist["step"].tolist(), hist["lr"].tolist()))
                loss_of = dict(zip(hist["step"].tolist(), hist["train_loss"].tolist()))
                for step in sorted(set(lr_of) | set(by_step)):
                    k = by_step.get(step)
                    evaluation = None if k is None else (ev["val_loss"][k], ev["val_acc"][k], ev["weight_norm"][k],
                                                         ev["norm_sq"][k])
                    writer.writerow(metrics_row(name, step, loss_of.get(step), lr_of.get(step), evaluation))
        return ["metrics.csv"]

    def stream_outputs(self, out: Path, every: int = 1) -> list:
        """Stream metrics.csv into ``out`` from now on (engine/replay.py)."""
        from sgdtui.engine.replay import CsvStream

        stream = CsvStream(out, "metrics.csv", METRICS_COLUMNS, every)
        self.flush()  # what the lanes recorded before the stream began goes in first
        self.sink = _MetricsRows(stream)
        for lane in self.lanes:
            stream.restart(lane)
            hist, ev = lane.history.snapshot(), lane.evals.snapshot()
            trained = (hist["step"], hist["train_loss"], hist["lr"]) if len(hist["step"]) else None
            evaluated = [(t, np.array([ev["val_loss"][k], ev["val_acc"][k], ev["weight_norm"][k], ev["norm_sq"][k]]))
                         for k, t in enumerate(ev["step"].tolist())]
            self.sink.block(lane, trained, evaluated)
        return [stream]

    def finish_outputs(self, streams: list) -> list[str]:
        self.flush()
        (stream,) = streams
        stream.finish([(lane, [0]) for lane in self.lanes])
        return ["metrics.csv"]

    def summary(self) -> dict[str, Any]:
        """final_loss / best_loss are validation losses (the full-data loss); steps_to_min is null
        (an MLP has no known minimum)."""
        evals = self.evaluations()
        lanes = []
        for lane in self.lanes:
            ev = evals[lane.config.name]
            val = ev["val_loss"]
            train = lane.history.column("train_loss")
            acc = ev["val_acc"]
            lanes.append({
                "lane": lane.config.name,
                "optimizer": lane.config.optimizer,
                "final_loss": _finite_or_none(float(val[-1])) if len(val) else None,
                "best_loss": lane.best_val if math.isfinite(lane.best_val) else None,
                "steps_to_min": None,
                "diverged_at": lane.diverged_at,
                "wall_time": lane.wall_time,
                "final_train_loss": _finite_or_none(float(train[-1])) if len(train) else None,
                "final_val_acc": _finite_or_none(float(acc[-1])) if len(acc) else None,
            })
        return {"device": str(self.device), "eval_every": self.problem.eval_every, "min_value": None, "lanes": lanes}


def _finite_or_none(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def _cell(v: float | None) -> str:
    """A metrics.csv cell: empty when not evaluated, ``nan`` for a NaN (a diverged loss)."""
    return "" if v is None else repr(float(v))


def metrics_row(name: str, step: int, loss: float | None, lr: float | None, evaluation) -> list[str]:
    """One metrics.csv row; ``evaluation`` is (val_loss, val_acc, weight_norm, norm_sq) or None."""
    row = [name, step, _cell(loss), "", "", _cell(lr), "", ""]
    if evaluation is not None:
        val_loss, val_acc, weight_norm, norm_sq = evaluation
        row[3], row[4], row[6] = _cell(val_loss), _cell(val_acc), _cell(weight_norm)
        if lr is not None and math.isfinite(norm_sq) and norm_sq > 0:
            row[7] = _cell(lr / norm_sq)
    return row


class _MetricsRows:
    """An MLP race's sink for streamed replays: each flush as metrics.csv rows, per lane in step
    order (the training rows and the evaluations of the flushed steps, merged by step)."""

    def __init__(self, stream):
        self.stream = stream

    def block(self, lane: MLPLane, trained, evaluated: list) -> None:
        stream, name = self.stream, lane.config.name
        by_step: dict[int, list] = {}
        if trained is not None:
            steps, losses, lrs = trained
            for step, loss, lr in zip(steps.tolist(), losses.tolist(), lrs.tolist()):
                by_step[step] = [loss, lr, None]
        for t, row in evaluated:
            by_step.setdefault(int(t), [None, None, None])[2] = tuple(float(v) for v in row[:4])
        if not by_step:
            return
        ordered = sorted(by_step)
        kept = [step for step in ordered if stream.keep(step)]
        stream.rows(lane, 0, [metrics_row(name, step, *by_step[step]) for step in kept], kept[-1] if kept else None)
        if stream.every != 1:
            stream.last(lane, 0, ordered[-1], metrics_row(name, ordered[-1], *by_step[ordered[-1]]))


def data_view(x: np.ndarray, margin: float = 0.15) -> tuple[tuple[float, float], tuple[float, float]]:
    """A view around the data points (x, and y for 2-D inputs)."""
    lo, hi = x.min(axis=0), x.max(axis=0)
    pad = (hi - lo) * margin + 1e-6
    xlim = (float(lo[0] - pad[0]), float(hi[0] + pad[0]))
    ylim = (float(lo[1] - pad[1]), float(hi[1] + pad[1])) if x.shape[1] > 1 else (-1.0, 1.0)
    return xlim, ylim
