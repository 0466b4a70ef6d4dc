"""MLP races: the same lanes (optimizer, hyperparameters, schedule, batch, coupling) training
copies of one small MLP on a 2-D dataset, stepped together by ``MLPTrainer``.

Per-step numbers stay on the device: each step's minibatch losses are copied into a device
staging buffer, and every ``eval_every`` steps the validation loss/accuracy, the weight norms,
the gradient-noise estimate and (for SWA lanes) the averaged weights' validation figures are
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
from sgdtui.engine.files import open_output
from sgdtui.engine.history import History
from sgdtui.engine.lane import LaneConfig, LaneSteering, lane_seed
from sgdtui.engine.params import SettingError
from sgdtui.engine.race import Race
from sgdtui.engine.snapshot import Snapshot
from sgdtui.mlp.lab import (RangeTestRows, WeightAverage, is_collapsed, lane_gibbs_temperature, lane_temperature,
                            layer_readouts, trust_ratio)
from sgdtui.mlp.model import LaneSetup, MLPConfig, MLPTrainer, resolve_device
from sgdtui.mlp.snapshot import LossSlice, MLPLaneSnapshot, MLPPayload

if TYPE_CHECKING:
    from sgdtui.mlp.problem import MLPProblem

STAGE = 256
GRID_RES = 60
# In a running view's frames (``live`` snapshots), the prediction grid (a forward pass over
# GRID_RES^2 points, a third of a snapshot's cost) is recomputed every LIVE_GRID_EVERY-th frame: the
# boundary pane redraws at most 5 times a second from 25. Every other snapshot has its own.
LIVE_GRID_EVERY = 3
METRICS_COLUMNS = ("lane", "step", "train_loss", "val_loss", "val_acc", "lr", "weight_norm", "effective_lr",
                   "effective_lr_layers", "collapsed", "lr_wd", "grad_noise", "swa_val_loss", "swa_val_acc")
# An evaluation row as staged and recorded: these, then ||W||^2 of each normalized layer.
EVAL_FIELDS = ("val_loss", "val_acc", "weight_norm", "grad_noise", "swa_loss", "swa_acc")
SURFACE_ONLY = ("burn_in", "flow")  # Lab lane options an MLP lane has no use for


class MLPLane(LaneSteering):
    """Steering state of one lane; its weights and optimizer live in the race's trainer."""

    def __init__(self, race: "MLPRace", config: LaneConfig):
        self.race = race
        self.config = config
        self.wall_time = 0.0
        self.noise_seed = lane_seed(race.seed, config.name, "noise-probes") >> 2
        self.reset_state()

    def reset_state(self) -> None:
        self.t = 0
        self.sum_lr = self.sum_lr2 = 0.0
        self.start_schedule()
        self.diverged_at: int | None = None
        cap = self.race.history_capacity
        self.history = History({"train_loss": (), "lr": (), "weight_decay": ()}, capacity=cap, dtype=np.float64)
        width = max(1, self.race.normalized_count)
        self.evals = History({**{name: () for name in EVAL_FIELDS}, "swa_on": (), "lr": (), "weight_decay": (),
                              "norm_sq": (width,)}, capacity=cap)
        self.weights_path: list[np.ndarray] = []  # flattened weights every eval, for PCA slices
        self.best_val = math.inf  # the best finite validation loss since the lane (re)started
        self.best_swa = math.inf
        self.swa: WeightAverage | None = None
        self.effective_lr = self.compute_lr()

    def start_schedule(self) -> None:
        super().start_schedule()
        # A range test's (lr, loss) rows are kept exactly while its ramp runs.
        self.range_rows = RangeTestRows() if self.config.schedule == "range-test" else None

    @property
    def index(self) -> int:
        return self.race.lanes.index(self)

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self.race.trainer.optimizer(self.index)

    def apply_config(self, new: LaneConfig) -> None:
        if new.batch != self.config.batch:  # the trainer checks the batch against the data set first
            self.race.trainer.set_batch(self.index, new.batch)
        if (new.schedule, new.schedule_params) != (self.config.schedule, self.config.schedule_params):
            self.race.flush()  # the staged rows belong to the old schedule (a range test's rows)
        if new.swa_start != self.config.swa_start:
            self.swa = None  # a new start: a new average, begun at the next step it covers
        super().apply_config(new)
        self.average_weights()

    def average_weights(self) -> None:
        """Add the current weights to the SWA average when the lane averages from a step <= t
        (from the step the option was set at, when that is later)."""
        start = self.config.swa_start
        if start is None or self.t < start:
            return
        module = self.race.trainer.module(self.index)
        if self.swa is None:
            self.swa = WeightAverage(module, self.t)
        self.swa.add(module, self.t)

    @property
    def full_batch(self) -> bool:
        return self.config.batch == self.race.trainer.n_train

    @property
    def temperature(self) -> float | None:  # type: ignore[override]
        cfg = self.config
        return lane_temperature(cfg.optimizer, cfg.hyper, self.optimizer, self.effective_lr, cfg.batch)

    @property
    def weight_decay(self) -> float:
        return float(self.config.hyper.get("weight_decay", 0.0))

    def status(self) -> str:
        if self.diverged_at is not None:
            return f"diverged at {self.diverged_at}"
        return "running" if self.t else "ready"


class MLPRace(Race):
    """All MLP lanes stepping together, one batched forward/backward per step."""

    eval_noise = True  # estimate the gradient noise at every evaluation (sweeps, which never show it, skip it)

    def for_display(self) -> None:
        # The evaluation's gradient-noise probe (its own seeded stream) goes only into
        # metrics.csv's grad_noise column; a live view's table estimates the noise in its costly
        # snapshots.
        self.eval_noise = False

    def __init__(self, problem: "MLPProblem", lanes: list[LaneConfig] = (), seed: int = 0,
                 history_capacity: int | None = 4096):
        self.seed = seed
        self.history_capacity = history_capacity
        self.sink: "_MetricsRows | None" = None  # streamed replays (engine/replay.py)
        self.lanes: list[MLPLane] = []
        # (what it was computed for, the step, the grid, snapshots that reused it since)
        self._grid_cache: tuple[tuple, int, np.ndarray, int] | None = None
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
        layers = self.trainer.linear_layers()
        self.normalized_layers = [name for name, normalized in layers if normalized]
        self.normalized_count = len(self.normalized_layers)
        init = dict(zip([name for name, _ in self.trainer._template.named_parameters()], self.trainer.init_norm_sq))
        self.init_norm_sq = [init[name] for name in self.normalized_layers]
        self.layer_init_norm_sq = [init[name] for name, _ in layers]
        self._stage_loss: list[list[torch.Tensor]] = []  # per step: each lane's 0-d loss tensor (on the device)
        self._stage_lr: list[list[float]] = []
        self._stage_wd: list[list[float]] = []
        # (lane index, its step, eval row on the device, SWA on, lr, weight decay)
        self._stage_eval: list[tuple[int, int, torch.Tensor, bool, float, float]] = []

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
        _refuse_surface_options(config)
        self.flush()
        self.trainer.add_lane(self._setup(config))
        lane = MLPLane(self, config)
        self.lanes.append(lane)
        lane.average_weights()  # swa = { start = 0 } averages the initial weights too
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

    def set_lane(self, name: str, config: LaneConfig) -> None:
        _refuse_surface_options(config)
        super().set_lane(name, config)

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
            lrs, wds = [], []
            for lane in self.lanes:
                # A diverged lane keeps stepping (its NaNs stay its own): marking it happens in
                # flush(), and nothing that flush timing decides may feed back into the numbers.
                lr = lane.compute_lr()
                lane.effective_lr = lr
                for group in lane.optimizer.param_groups:
                    group["lr"] = lr
                lrs.append(lr)
                wds.append(lane.weight_decay)
            self.trainer.step()
            if len(self._stage_lr) == STAGE:
                self.flush()
            # Keep references only: stacking (and the host sync) waits for flush().
            self._stage_loss.append(self.trainer.last_loss_tensors())
            self._stage_lr.append(lrs)
            self._stage_wd.append(wds)
            for lane, lr in zip(self.lanes, lrs):
                lane.t += 1
                lane.count_lrs((lr,))  # one step at a time: the sums never depend on when flushes happen
                if lane.config.swa_start is not None:
                    lane.average_weights()
            self.step_count += 1
            if self.step_count % self.problem.eval_every == 0:
                self._record_eval()
            spent = (clock() - started) / len(self.lanes)
            for lane in self.lanes:
                lane.wall_time += spent

    def _record_eval(self, lanes: list[MLPLane] | None = None) -> None:
        """Stage validation metrics (on the device) and the weights for PCA slices."""
        table = self.trainer.device_eval()
        trainer = self.trainer
        nan = torch.full((1,), math.nan, device=self.device)
        for lane in (lanes or self.lanes):
            i = lane.index
            # Seeded by the lane's step, so the estimate at a step is the same however the run got there.
            noise = (trainer.probe_gradient_noise(i, (lane.noise_seed + lane.t) % (1 << 62))[None]
                     if self.eval_noise else nan)
            swa = (lane.swa.evaluate(trainer.x_train, trainer.x_val, trainer.y_val, trainer._loss,
                                     self.dataset.task == "classification") if lane.swa is not None else nan.expand(2))
            row = torch.cat([table[i, :3], noise.float(), swa.float(), table[i, 3:]])
            self._stage_eval.append((i, lane.t, row, lane.swa is not None, lane.effective_lr, lane.weight_decay))
            if len(lane.weights_path) >= 400:  # bounded: keep every other recorded point
                lane.weights_path = lane.weights_path[::2]
            lane.weights_path.append(self.trainer.flat_weights(i))

    def flush(self) -> None:
        """Sync staged per-step numbers to the host histories; mark lanes whose loss went non-finite."""
        k = len(self._stage_lr)  # one staged entry per step
        trained: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        if k:
            losses = torch.stack([torch.stack(row) for row in self._stage_loss]).double().cpu().numpy()
            lrs = np.asarray(self._stage_lr, dtype=np.float64)
            wds = np.asarray(self._stage_wd, dtype=np.float64)
            for i, lane in enumerate(self.lanes):
                first = lane.t - k + 1
                col = losses[:, i]
                steps = np.arange(first, first + k)
                lane.history.append_block(steps, train_loss=col, lr=lrs[:, i], weight_decay=wds[:, i])
                trained[i] = (steps, col, lrs[:, i], wds[:, i])
                if lane.diverged_at is None and not np.isfinite(col).all():
                    lane.diverged_at = int(first + np.argmax(~np.isfinite(col)))
                if lane.range_rows is not None:  # the updates of the ramp: schedule times 0 .. total_steps - 1
                    ramp = (steps > lane.schedule_origin) & (steps <= lane.schedule_origin + lane.schedule.total_steps)
                    lane.range_rows.add(lrs[ramp, i], col[ramp])
        self._stage_lr, self._stage_loss, self._stage_wd = [], [], []
        evaluated: dict[int, list[tuple[int, EvalRow]]] = {}
        if self._stage_eval:
            rows = torch.stack([staged[2] for staged in self._stage_eval]).double().cpu().numpy()
            for (i, t, _, swa_on, lr, wd), row in zip(self._stage_eval, rows):
                if i < len(self.lanes):
                    lane = self.lanes[i]
                    fields = dict(zip(EVAL_FIELDS, row[:len(EVAL_FIELDS)]))
                    norm_sq = row[len(EVAL_FIELDS):]
                    lane.evals.append(t, **fields, swa_on=float(swa_on), lr=lr, weight_decay=wd, norm_sq=norm_sq)
                    if math.isfinite(row[0]):
                        lane.best_val = min(lane.best_val, float(row[0]))
                    if swa_on and math.isfinite(fields["swa_loss"]):
                        lane.best_swa = min(lane.best_swa, float(fields["swa_loss"]))
                    evaluated.setdefault(i, []).append((t, EvalRow(fields, swa_on, lr, norm_sq)))
            self._stage_eval = []
        if self.sink is not None:
            for i, lane in enumerate(self.lanes):
                self.sink.block(lane, trained.get(i), evaluated.get(i, []))
        for lane in self.lanes:
            if lane.weights_path and isinstance(lane.weights_path[-1], torch.Tensor):
                lane.weights_path = [w.cpu().numpy() if isinstance(w, torch.Tensor) else w for w in lane.weights_path]

    # --- read-outs ----------------------------------------------------------------------------
    def _layers(self, lane: MLPLane, norms: np.ndarray):
        """The lane's per-layer read-outs (trust ratios read from its optimizer's state)."""
        trainer, index = self.trainer, lane.index
        module = trainer.module(index)
        optimizer = lane.optimizer
        group = optimizer.param_groups[0]
        parameters = dict(module.named_parameters())
        weights = [parameters[name] for name, _ in trainer.linear_layers()]
        ratios = [trust_ratio(lane.config.optimizer, group, optimizer.state.get(w, {}), w, w.grad) for w in weights]
        return layer_readouts(trainer.linear_layers(), norms, self.layer_init_norm_sq, lane.effective_lr, ratios)

    def snapshot(self, version: int, clock: int, *, selected: str | None = None, max_rows: int | None = 2000,
                 costly: bool = True, live: bool = False, grid_res: int = GRID_RES) -> Snapshot:
        """Every lane's curves and latest evaluation; the prediction grid of ``selected`` (or the
        first lane); the gradient-noise estimate (extra forward/backward passes) only when ``costly``."""
        self.flush()
        metrics = self.trainer.metrics(gradient_noise=costly)
        norms = self.trainer.layer_norms()
        lanes = []
        for i, lane in enumerate(self.lanes):
            hist = lane.history.snapshot(max_rows)
            ev = lane.evals.snapshot(max_rows)
            layers = self._layers(lane, norms[i])
            normalized = [layer for layer in layers if layer.normalized]
            collapsed = [layer.name for layer in normalized if layer.collapsed]
            readout = lane.readout()  # its temperature reads the optimizer's state: computed once
            temperature = readout["temperature"]
            swa_rows = ev["swa_on"] > 0
            reading, range_curve = None, None
            if lane.range_rows is not None:
                reading, lrs, curve = lane.range_rows.reading()
                range_curve = (lrs, curve)
            lanes.append(MLPLaneSnapshot(
                **readout, status=lane.status(), diverged_at=lane.diverged_at,
                steps=hist["step"], loss_curve=hist["train_loss"], lrs=hist["lr"], weight_decay=lane.weight_decay,
                train_loss=hist["train_loss"], eval_steps=ev["step"], val_loss=ev["val_loss"], val_acc=ev["val_acc"],
                weight_norm=float(metrics["weight_norm"][i]),
                norm_effective_lr=tuple(layer.effective_lr for layer in normalized) if normalized else None,
                intrinsic_lr=lane.effective_lr * lane.weight_decay,
                grad_noise=None if metrics["grad_noise"][i] is None else float(metrics["grad_noise"][i]),
                gibbs_temperature=lane_gibbs_temperature(lane.config.optimizer, lane.config.hyper, temperature,
                                                         lane.full_batch),
                range_test=reading, range_curve=range_curve,
                swa_steps=ev["step"][swa_rows] if lane.config.swa_start is not None else None,
                swa_loss=ev["swa_loss"][swa_rows] if lane.config.swa_start is not None else None,
                swa_acc=ev["swa_acc"][swa_rows] if lane.config.swa_start is not None else None,
                swa_count=lane.swa.count if lane.swa is not None else 0,
                layers=layers, eval_lr=ev["lr"], eval_norm_sq=ev["norm_sq"] if self.normalized_count else None,
                warnings=tuple(f"{name} collapsed (‖W‖ < 1% of its start)" for name in collapsed),
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
            grid = self._prediction_grid(names.index(target), xlim, ylim, grid_res, fresh=costly or not live)
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

    def _prediction_grid(self, index: int, xlim, ylim, grid_res: int, fresh: bool) -> np.ndarray:
        """Lane ``index``'s predictions over the view. The latest grid is given again while it is of
        this step, and, unless ``fresh``, while it is younger than LIVE_GRID_EVERY snapshots, the
        lanes having only trained on since. The key holds the trainer and the lane themselves, so a
        new problem or a new lane of the same name never gets an old grid."""
        lane = self.lanes[index]
        key = (self.trainer, lane, tuple(xlim), tuple(ylim), grid_res)
        cached = self._grid_cache
        if cached is not None and cached[0] == key:
            if cached[1] == self.step_count:
                return cached[2]
            if not fresh and self.step_count > cached[1] and cached[3] + 1 < LIVE_GRID_EVERY:
                self._grid_cache = (key, cached[1], cached[2], cached[3] + 1)
                return cached[2]
        grid = self.trainer.predict_grid(index, xlim, ylim, grid_res)
        self._grid_cache = (key, self.step_count, grid, 0)
        return grid

    def trajectories(self) -> dict[str, dict[str, np.ndarray]]:
        """Per lane: 'step', 'train_loss', 'lr', 'weight_decay' per step."""
        self.flush()
        return {lane.config.name: lane.history.snapshot() for lane in self.lanes}

    def evaluations(self) -> dict[str, dict[str, np.ndarray]]:
        """Per lane, every eval_every steps: 'step', 'val_loss', 'val_acc', 'weight_norm',
        'grad_noise', 'swa_loss', 'swa_acc', 'swa_on' (1 where the lane averaged its weights),
        'lr', 'weight_decay' and 'norm_sq' (E, K): ||W||^2 of each normalized layer."""
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
    def _rows_of(self, lane: MLPLane) -> tuple[tuple | None, list]:
        """A lane's recorded rows in the sink's form: (steps, losses, lrs, wds), [(t, EvalRow)]."""
        hist, ev = lane.history.snapshot(), lane.evals.snapshot()
        trained = (hist["step"], hist["train_loss"], hist["lr"], hist["weight_decay"]) if len(hist["step"]) else None
        evaluated = [(int(t), EvalRow({name: ev[name][k] for name in EVAL_FIELDS}, bool(ev["swa_on"][k]),
                                      float(ev["lr"][k]), ev["norm_sq"][k]))
                     for k, t in enumerate(ev["step"].tolist())]
        return trained, evaluated

    def write_outputs(self, out: Path) -> list[str]:
        """metrics.csv: one row per lane and step (see ``metrics_row`` for the columns)."""
        self.flush()
        with open_output(Path(out) / "metrics.csv", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(METRICS_COLUMNS)
            for lane in self.lanes:
                trained, evaluated = self._rows_of(lane)
                by_step = _merged(trained, evaluated)
                for step in sorted(by_step):
                    writer.writerow(self.metrics_row(lane.config.name, step, *by_step[step]))
        return ["metrics.csv"]

    def metrics_row(self, name: str, step: int, loss: float | None, lr: float | None, wd: float | None,
                    evaluation: "EvalRow | None") -> list[str]:
        return metrics_row(name, step, loss, lr, wd, evaluation, self.normalized_layers, self.init_norm_sq)

    def stream_outputs(self, out: Path, every: int = 1) -> list:
        """Stream metrics.csv into ``out`` from now on (engine/replay.py)."""
        from sgdtui.engine.replay import CsvStream

        stream = CsvStream(out, "metrics.csv", METRICS_COLUMNS, every)
        self.flush()  # what the lanes recorded before the stream began goes in first
        self.sink = _MetricsRows(stream, self)
        for lane in self.lanes:
            stream.restart(lane)
            self.sink.block(lane, *self._rows_of(lane))
        return [stream]

    def finish_outputs(self, streams: list) -> list[str]:
        self.flush()
        (stream,) = streams
        stream.finish([(lane, [0]) for lane in self.lanes])
        return ["metrics.csv"]

    def summary(self) -> dict[str, Any]:
        """final_loss / best_loss are validation losses (the full-data loss); steps_to_min is null
        (an MLP has no known minimum). The Lab's figures: the temperatures, sum(lr) and sum(lr^2),
        lr * weight decay, lr / ||W||^2 of each normalized layer at the last evaluation and the
        layers collapsed there, the SWA average's validation figures, a range test's suggestions."""
        evals = self.evaluations()
        lanes = []
        for lane in self.lanes:
            ev = evals[lane.config.name]
            val = ev["val_loss"]
            train = lane.history.column("train_loss")
            acc = ev["val_acc"]
            readout = lane.readout()  # its temperature reads the optimizer's state: computed once
            temperature = readout["temperature"]
            entry = {
                "lane": lane.config.name,
                "optimizer": lane.config.optimizer,
                "final_loss": _finite_or_none(float(val[-1])) if len(val) else None,
                "best_loss": lane.best_val if math.isfinite(lane.best_val) else None,
                "steps_to_min": None,
                "diverged_at": lane.diverged_at,
                "wall_time": lane.wall_time,
                "final_train_loss": _finite_or_none(float(train[-1])) if len(train) else None,
                "final_val_acc": _finite_or_none(float(acc[-1])) if len(acc) else None,
                "temperature": _finite_or_none(temperature),
                "gibbs_temperature": _finite_or_none(lane_gibbs_temperature(
                    lane.config.optimizer, lane.config.hyper, temperature, lane.full_batch)),
                "sum_lr": lane.sum_lr,
                "sum_lr2": lane.sum_lr2,
                "lr_wd": lane.effective_lr * lane.weight_decay,
            }
            if self.normalized_count and len(ev["step"]):
                norm_sq, lr = ev["norm_sq"][-1], float(ev["lr"][-1])
                entry["effective_lr"] = {name: _finite_or_none(_ratio(lr, float(v)))
                                         for name, v in zip(self.normalized_layers, norm_sq)}
                entry["collapsed"] = [name for name, v, init in zip(self.normalized_layers, norm_sq, self.init_norm_sq)
                                      if is_collapsed(float(v), init)]
            if lane.config.swa_start is not None:
                on = ev["swa_on"] > 0
                swa_loss, swa_acc = ev["swa_loss"][on], ev["swa_acc"][on]
                entry["swa"] = {
                    "start": lane.config.swa_start,
                    "averaged": lane.swa.count if lane.swa is not None else 0,
                    "final_loss": _finite_or_none(float(swa_loss[-1])) if len(swa_loss) else None,
                    "best_loss": lane.best_swa if math.isfinite(lane.best_swa) else None,
                    "final_val_acc": _finite_or_none(float(swa_acc[-1])) if len(swa_acc) else None,
                }
            if lane.range_rows is not None:
                reading, _, _ = lane.range_rows.reading()
                entry["suggested_lr"] = reading.suggested_lr
                entry["suggestions"] = dict(reading.suggestions)
            lanes.append(entry)
        return {"device": str(self.device), "eval_every": self.problem.eval_every, "min_value": None, "lanes": lanes}


def _refuse_surface_options(config: LaneConfig) -> None:
    if config.burn_in is not None:
        raise SettingError("burn_in", "stationary statistics are for surface lanes (MLP lanes have no burn_in)")
    if config.flow:
        raise SettingError("flow", "the gradient-flow reference is for surface lanes (an MLP lane has none)")


def _finite_or_none(v: float | None) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


def _ratio(lr: float, norm_sq: float) -> float:
    """lr / ||W||^2: inf for a weight that collapsed to exactly 0, nan for a NaN one."""
    if norm_sq == 0:
        return math.inf
    return lr / norm_sq


def _cell(v: float | None) -> str:
    """A metrics.csv cell: empty when not evaluated, ``nan`` for a NaN (a diverged loss)."""
    return "" if v is None else repr(float(v))


class EvalRow:
    """One evaluation of a lane as recorded: the EVAL_FIELDS, whether it averaged its weights,
    the lr then and ||W||^2 of each normalized layer."""

    __slots__ = ("fields", "swa_on", "lr", "norm_sq")

    def __init__(self, fields: dict[str, float], swa_on: bool, lr: float, norm_sq: np.ndarray):
        self.fields, self.swa_on, self.lr, self.norm_sq = fields, swa_on, lr, norm_sq


def metrics_row(name: str, step: int, loss: float | None, lr: float | None, wd: float | None,
                evaluation: EvalRow | None, normalized: list[str], init_norm_sq: list[float]) -> list[str]:
    """One metrics.csv row. Step k >= 1 holds the minibatch loss, lr and lr * weight decay
    (``lr_wd``) of update k; the evaluation columns are filled every eval_every steps (and at step
    0), empty otherwise: val_loss, val_acc, weight_norm ||w||, effective_lr (lr / ||W||^2 of the
    first normalized layer, with the lr of the latest update, or at step 0 of the first),
    effective_lr_layers (the same for every normalized layer, ";"-separated in layer order),
    collapsed (the normalized layers whose ||W|| fell below 1 % of its start, ";"-separated),
    grad_noise (E||g_hat - g||^2) and, while the lane averages its weights, swa_val_loss and
    swa_val_acc. A NaN is written ``nan``; a layer collapsed to exactly 0 gives ``inf``."""
    row = [name, step, _cell(loss), "", "", _cell(lr), "", "", "", "", "", "", "", ""]
    if lr is not None and wd is not None:
        row[10] = _cell(lr * wd)
    if evaluation is not None:
        fields = evaluation.fields
        row[3], row[4], row[6] = _cell(fields["val_loss"]), _cell(fields["val_acc"]), _cell(fields["weight_norm"])
        if normalized:
            ratios = [_ratio(evaluation.lr, float(v)) for v in evaluation.norm_sq[:len(normalized)]]
            row[7] = _cell(ratios[0])
            row[8] = ";".join(_cell(r) for r in ratios)
            row[9] = ";".join(layer for layer, v, init in zip(normalized, evaluation.norm_sq, init_norm_sq)
                              if is_collapsed(float(v), init))
        row[11] = _cell(fields["grad_noise"])
        if evaluation.swa_on:
            row[12], row[13] = _cell(fields["swa_loss"]), _cell(fields["swa_acc"])
    return row


def _merged(trained, evaluated: list) -> dict[int, list]:
    """{step: [loss, lr, wd, EvalRow | None]} from a lane's training rows and evaluations."""
    by_step: dict[int, list] = {}
    if trained is not None:
        steps, losses, lrs, wds = trained
        for step, loss, lr, wd in zip(steps.tolist(), losses.tolist(), lrs.tolist(), wds.tolist()):
            by_step[int(step)] = [loss, lr, wd, None]
    for t, row in evaluated:
        by_step.setdefault(int(t), [None, None, None, None])[3] = row
    return by_step


class _MetricsRows:
    """An MLP race's sink for streamed replays: each flush as metrics.csv rows, per lane in step
    order (the training rows and the evaluations of the flushed steps, merged by step)."""

    def __init__(self, stream, race: MLPRace):
        self.stream = stream
        self.race = race

    def block(self, lane: MLPLane, trained, evaluated: list) -> None:
        stream, name = self.stream, lane.config.name
        by_step = _merged(trained, evaluated)
        if not by_step:
            return
        ordered = sorted(by_step)
        kept = [step for step in ordered if stream.keep(step)]
        row = self.race.metrics_row
        stream.rows(lane, 0, [row(name, step, *by_step[step]) for step in kept], kept[-1] if kept else None)
        if stream.every != 1:
            stream.last(lane, 0, ordered[-1], row(name, ordered[-1], *by_step[ordered[-1]]))


def data_view(x: np.ndarray, margin: float = 0.15) -> tuple[tuple[float, float], tuple[float, float]]:
    """A view around the data points (x, and y for 2-D inputs)."""
    lo, hi = x.min(axis=0), x.max(axis=0)
    pad = (hi - lo) * margin + 1e-6
    xlim = (float(lo[0] - pad[0]), float(hi[0] + pad[0]))
    ylim = (float(lo[1] - pad[1]), float(hi[1] + pad[1])) if x.shape[1] > 1 else (-1.0, 1.0)
    return xlim, ylim
