"""MLP races: the same lanes (optimizer, hyperparameters, schedule, batch, coupling) training
copies of one small MLP on a 2-D dataset, stepped together by ``MLPTrainer``.

An ``MLPRace`` offers the steering interface of ``engine.race.Race`` (lane(name), add_lane,
remove_lane, reset, step, flush) so a ``Session`` drives either one through the same commands.

Per-step numbers stay on the device: each step's minibatch losses are copied into a device
staging buffer, and every ``eval_every`` steps the validation loss/accuracy and weight norms are
staged too; ``flush()`` (called when a snapshot is taken) syncs them to the host in one go.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from sgdtui.engine.checks import did_you_mean
from sgdtui.engine.datasets import DATASETS, make_dataset
from sgdtui.engine.history import History
from sgdtui.engine.race import LaneConfig, LaneReadout, LaneRoster, LaneSteering, lane_seed
from sgdtui.mlp.model import LaneSetup, MLPConfig, MLPTrainer, resolve_device

STAGE = 256
DEFAULT_BATCH = 32
MLP_KEYS = ("dataset", "hidden", "activation", "norm", "n", "noise", "classes", "data_seed", "init_seed", "eval_every")


class MLPProblemError(ValueError):
    """An invalid [problem] mlp table (the message names the key)."""


@dataclass(frozen=True)
class MLPProblem:
    """What is trained: dataset, network shape, device. ``eval_every`` is the interval (in
    steps) at which validation loss, accuracy and weight norms are recorded."""

    dataset: str = "moons"
    hidden: tuple[int, ...] = (32, 32)
    activation: str = "relu"
    norm: str = "none"
    n: int = 1000
    noise: float = 0.1
    classes: int | None = None
    data_seed: int = 0
    init_seed: int = 0
    eval_every: int = 10
    device: str = "auto"

    @staticmethod
    def from_table(table: dict[str, Any], device: str = "auto") -> "MLPProblem":
        """Validate a script's ``mlp = {...}`` table; errors name the key."""
        if not isinstance(table, dict):
            raise MLPProblemError("mlp: must be a table, e.g. mlp = { dataset = \"moons\" }")
        for key in table:
            if key not in MLP_KEYS:
                raise MLPProblemError(
                    f"mlp.{key}: unknown key{did_you_mean(key, MLP_KEYS)} (valid keys: {', '.join(MLP_KEYS)})")
        kw: dict[str, Any] = {}
        if "dataset" in table:
            name = table["dataset"]
            if name not in DATASETS:
                raise MLPProblemError(f"mlp.dataset: unknown dataset {name!r}{did_you_mean(name, DATASETS)}"
                                      f" (choose from {', '.join(DATASETS)})")
            kw["dataset"] = name
        if "hidden" in table:
            h = table["hidden"]
            if (not isinstance(h, list) or not 1 <= len(h) <= 8
                    or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4096 for v in h)):
                raise MLPProblemError(f"mlp.hidden: must be a list of 1-8 layer widths in [1, 4096], got {h!r}")
            kw["hidden"] = tuple(h)
        for key, choices in (("activation", ("relu", "tanh", "gelu")), ("norm", ("none", "batchnorm", "layernorm"))):
            if key in table:
                if table[key] not in choices:
                    raise MLPProblemError(f"mlp.{key}: {table[key]!r} is not one of {', '.join(choices)}")
                kw[key] = table[key]
        for key, lo, hi in (("n", 20, 1_000_000), ("eval_every", 1, 1_000_000), ("data_seed", 0, 2**62),
                            ("init_seed", 0, 2**62), ("classes", 2, 16)):
            if key in table:
                v = table[key]
                if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                    raise MLPProblemError(f"mlp.{key}: must be an integer in [{lo}, {hi}], got {v!r}")
                kw[key] = v
        if "noise" in table:
            v = table["noise"]
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v <= 10:
                raise MLPProblemError(f"mlp.noise: must be a number in [0, 10], got {v!r}")
            kw["noise"] = float(v)
        if device not in ("auto", "cpu", "cuda"):
            raise MLPProblemError(f"device: {device!r} is not one of auto, cpu, cuda")
        problem = MLPProblem(device=device, **kw)
        problem.make_dataset()  # surfaces dataset-specific errors (e.g. classes) now
        return problem

    def to_table(self) -> dict[str, Any]:
        table: dict[str, Any] = {
            "dataset": self.dataset, "hidden": list(self.hidden), "activation": self.activation, "norm": self.norm,
            "n": self.n, "noise": self.noise, "data_seed": self.data_seed, "init_seed": self.init_seed,
            "eval_every": self.eval_every,
        }
        if self.classes is not None:
            table["classes"] = self.classes
        return table

    def make_dataset(self):
        try:
            return make_dataset(self.dataset, n=self.n, noise=self.noise, seed=self.data_seed, n_classes=self.classes)
        except ValueError as exc:
            raise MLPProblemError(f"mlp: {exc}") from None

    @property
    def name(self) -> str:
        return f"mlp:{self.dataset}"


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
        self.effective_lr = self.compute_lr()

    @property
    def index(self) -> int:
        return self.race.lanes.index(self)

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self.race.trainer.optimizer(self.index)

    def set_config(self, **changes: Any) -> None:
        if "starts" in changes:
            raise ValueError("MLP lanes have no start points (all lanes start from the same initial weights)")
        if "batch" in changes:  # the trainer checks the batch against the data set first
            self.race.trainer.set_batch(self.index, self.config.with_changes(**changes).batch)
        super().set_config(**changes)

    @property
    def weight_decay(self) -> float:
        return float(self.config.hyper.get("weight_decay", 0.0))

    def status(self) -> str:
        if self.diverged_at is not None:
            return f"diverged at {self.diverged_at}"
        return "running" if self.t else "ready"


class MLPRace(LaneRoster):
    """All MLP lanes stepping together; mirrors ``engine.race.Race``'s steering interface."""

    def __init__(self, problem: MLPProblem, lanes: list[LaneConfig] = (), seed: int = 0,
                 history_capacity: int | None = 4096):
        self.problem = problem
        self.seed = seed
        self.history_capacity = history_capacity
        self.dataset = problem.make_dataset()
        self.model_config = MLPConfig.for_dataset(
            self.dataset, hidden=problem.hidden, activation=problem.activation, norm=problem.norm
        )
        self.device = resolve_device(problem.device)
        self.lanes: list[MLPLane] = []
        self.step_count = 0
        self._new_trainer()
        for cfg in lanes:
            self.add_lane(cfg)

    surface = None  # no analytic surface in MLP mode

    def _new_trainer(self) -> None:
        self.trainer = MLPTrainer(self.dataset, self.model_config, [], init_seed=self.problem.init_seed, device=self.device)
        self._stage_loss: list[list[torch.Tensor]] = []  # per step: each lane's 0-d loss tensor (on the device)
        self._stage_lr: list[list[float]] = []
        self._stage_eval: list[tuple[int, int, torch.Tensor]] = []  # (lane index, its step, eval row)

    def _setup(self, cfg: LaneConfig) -> LaneSetup:
        spec = cfg.spec
        hyper = dict(cfg.hyper)
        opt_gen = torch.Generator(device=self.device).manual_seed(lane_seed(self.seed, cfg.name, "optimizer") >> 2)

        def make_optimizer(params):
            # lars/lamb: per_row=False, so each parameter tensor (a layer) gets its own trust ratio.
            return spec.make(params, hyper, generator=opt_gen, per_row=False)

        return LaneSetup(name=cfg.name, make_optimizer=make_optimizer, batch=cfg.batch,
                         seed=lane_seed(self.seed, cfg.name, "batches") >> 2, weight_decay=0.0)

    # --- steering (the Race interface) -----------------------------------------------------
    def add_lane(self, config: LaneConfig) -> MLPLane:
        if config.name in self.lane_names():
            raise ValueError(f"a lane named {config.name!r} already exists")
        if config.starts is not None:
            raise ValueError("MLP lanes have no start points (all lanes start from the same initial weights)")
        self.flush()
        self.trainer.add_lane(self._setup(config))
        lane = MLPLane(self, config)
        self.lanes.append(lane)
        self._record_eval(lanes=[lane])
        return lane

    def remove_lane(self, name: str) -> None:
        lane = self.lane(name)
        self.flush()
        self.trainer.remove_lane(lane.index)
        self.lanes.remove(lane)

    def reset(self) -> None:
        """Every lane back to the shared initial weights, optimizer state and RNG streams fresh."""
        configs = [lane.config for lane in self.lanes]
        self._new_trainer()
        self.lanes = []
        for cfg in configs:
            self.add_lane(cfg)
        self.step_count = 0

    def set_surface(self, surface) -> None:
        raise ValueError("MLP mode has no surface to switch; start a surface session instead")

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
        if k:
            losses = torch.stack([torch.stack(row) for row in self._stage_loss]).double().cpu().numpy()
            lrs = np.asarray(self._stage_lr, dtype=np.float64)
            for i, lane in enumerate(self.lanes):
                first = lane.t - k + 1
                col = losses[:, i]
                lane.history.append_block(np.arange(first, first + k), train_loss=col, lr=lrs[:, i])
                if lane.diverged_at is None and not np.isfinite(col).all():
                    lane.diverged_at = int(first + np.argmax(~np.isfinite(col)))
        self._stage_lr, self._stage_loss = [], []
        if self._stage_eval:
            rows = torch.stack([row for _, _, row in self._stage_eval]).double().cpu().numpy()
            for (i, t, _), row in zip(self._stage_eval, rows):
                if i < len(self.lanes):
                    self.lanes[i].evals.append(t, val_loss=row[0], val_acc=row[1], weight_norm=row[2], norm_sq=row[3])
            self._stage_eval = []
        for lane in self.lanes:
            if lane.weights_path and isinstance(lane.weights_path[-1], torch.Tensor):
                lane.weights_path = [w.cpu().numpy() if isinstance(w, torch.Tensor) else w for w in lane.weights_path]


# --- snapshots ----------------------------------------------------------------------------


@dataclass(frozen=True)
class MLPLaneSnapshot(LaneReadout):
    weight_decay: float
    steps: np.ndarray  # (T,) per-step train-loss history
    train_loss: np.ndarray  # (T,)
    lrs: np.ndarray  # (T,)
    eval_steps: np.ndarray  # (E,) every eval_every steps
    val_loss: np.ndarray  # (E,)
    val_acc: np.ndarray  # (E,) NaN for regression
    weight_norm: float  # ||w|| now
    norm_effective_lr: tuple[float, ...] | None  # eta/||W||^2 of each normalized layer (None: no norm)
    intrinsic_lr: float  # eta * lambda
    grad_noise: float | None  # E||g_hat - g||^2 at the lane's batch size
    status: str
    diverged_at: int | None


@dataclass(frozen=True)
class MLPSnapshot:
    version: int
    clock: int
    problem: MLPProblem
    task: str
    n_classes: int
    x_train: np.ndarray  # (n, d) standardized inputs
    y_train: np.ndarray  # (n,) labels or (n, 1) targets
    lanes: tuple[MLPLaneSnapshot, ...]
    boundary_lane: str | None  # the lane whose prediction grid is below
    grid_xlim: tuple[float, float]
    grid_ylim: tuple[float, float]
    grid: np.ndarray | None  # (res, res, classes) probabilities, or (res,) regression fit
    device: str

    def lane(self, name: str) -> MLPLaneSnapshot:
        for lane in self.lanes:
            if lane.name == name:
                return lane
        raise KeyError(name)


def data_view(x: np.ndarray, margin: float = 0.15) -> tuple[tuple[float, float], tuple[float, float]]:
    """A view around the data points (x, and y for 2-D inputs)."""
    lo, hi = x.min(axis=0), x.max(axis=0)
    pad = (hi - lo) * margin + 1e-6
    xlim = (float(lo[0] - pad[0]), float(hi[0] + pad[0]))
    ylim = (float(lo[1] - pad[1]), float(hi[1] + pad[1])) if x.shape[1] > 1 else (-1.0, 1.0)
    return xlim, ylim


def mlp_snapshot(race: MLPRace, version: int, clock: int, *, selected: str | None = None,
                 grid_res: int = 60, max_rows: int | None = 2000, gradient_noise: bool = True) -> MLPSnapshot:
    race.flush()
    metrics = race.trainer.metrics(gradient_noise=gradient_noise)
    lanes = []
    for i, lane in enumerate(race.lanes):
        hist = lane.history.snapshot(max_rows)
        ev = lane.evals.snapshot(max_rows)
        eff = metrics["effective_lr"][i]
        lanes.append(MLPLaneSnapshot(
            **lane.readout(), weight_decay=lane.weight_decay,
            steps=hist["step"], train_loss=hist["train_loss"], lrs=hist["lr"], eval_steps=ev["step"],
            val_loss=ev["val_loss"], val_acc=ev["val_acc"], weight_norm=float(metrics["weight_norm"][i]),
            # eta/||W||^2 with the lane's effective lr (the trainer's figure uses the group lr)
            norm_effective_lr=None if eff is None else tuple(
                lane.effective_lr * e / metrics["lr"][i] if metrics["lr"][i] else math.nan for e in eff),
            intrinsic_lr=lane.effective_lr * lane.weight_decay,
            grad_noise=None if metrics["grad_noise"][i] is None else float(metrics["grad_noise"][i]),
            status=lane.status(), diverged_at=lane.diverged_at,
        ))
    x = race.dataset.x_train.numpy()
    xlim, ylim = data_view(x)
    names = race.lane_names()
    target = selected if selected in names else (names[0] if names else None)
    grid = None
    if target is not None:
        if race.dataset.task == "regression":
            ys = race.dataset.y_train.numpy()[:, 0]
            ylim = (float(ys.min() - 0.3), float(ys.max() + 0.3))
        grid = race.trainer.predict_grid(names.index(target), xlim, ylim, grid_res)
    return MLPSnapshot(
        version=version, clock=clock, problem=race.problem, task=race.dataset.task,
        n_classes=race.dataset.n_classes, x_train=x, y_train=race.dataset.y_train.numpy(),
        lanes=tuple(lanes), boundary_lane=target, grid_xlim=xlim, grid_ylim=ylim, grid=grid,
        device=str(race.device),
    )
