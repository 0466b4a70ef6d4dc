"""The MLP problem kind: copies of one small MLP trained on a seeded 2-D (or 1-D) dataset.

Its [problem] keys: ``mlp = { dataset = ..., hidden = [...], activation, norm, n, noise,
classes, data_seed, init_seed, eval_every }`` and ``device = "auto" | "cpu" | "cuda"``. Lanes
have no start points (every lane starts from the same initial weights) and default to batch
32. Registered with the engine through the ``sgdtui.problems`` entry point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from sgdtui.engine.checks import did_you_mean, is_number
from sgdtui.engine.lane import LaneConfig
from sgdtui.engine.params import SettingError
from sgdtui.engine.problem import Problem
from sgdtui.mlp.datasets import DATASETS, make_dataset

DEFAULT_BATCH = 32
MLP_KEYS = ("dataset", "hidden", "activation", "norm", "n", "noise", "classes", "data_seed", "init_seed", "eval_every")
ACTIVATIONS = ("relu", "tanh", "gelu")
NORMS = ("none", "batchnorm", "layernorm")
DEVICES = ("auto", "cpu", "cuda")
_INTS = (("n", 20, 1_000_000), ("eval_every", 1, 1_000_000), ("data_seed", 0, 2**62), ("init_seed", 0, 2**62),
         ("classes", 2, 16))


@dataclass(frozen=True)
class MLPProblem(Problem):
    """What is trained: dataset, network shape, device. ``eval_every`` is the interval (in
    steps) at which validation loss, accuracy and weight norms are recorded."""

    kind: ClassVar[str] = "mlp"
    table_keys: ClassVar[tuple[str, ...]] = ("mlp", "device")

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

    @classmethod
    def from_table(cls, table: dict[str, Any], registry: Any = None) -> "MLPProblem":
        """Validate a [problem] table with an ``mlp`` sub-table; errors name the key."""
        if "mlp" not in table:
            raise SettingError("device", "'device' goes with an 'mlp' problem")
        device = table.get("device", "auto")
        if device not in DEVICES if isinstance(device, str) else True:
            raise SettingError("device", f"{device!r} is not one of {', '.join(DEVICES)}")
        mlp = table["mlp"]
        if not isinstance(mlp, dict):
            raise SettingError("mlp", f"must be a table, e.g. mlp = {{ dataset = \"moons\" }}, got {mlp!r}")
        for key in mlp:
            if key not in MLP_KEYS:
                raise SettingError(f"mlp.{key}", f"unknown key{did_you_mean(key, MLP_KEYS)} (valid keys: {', '.join(MLP_KEYS)})")
        kw: dict[str, Any] = {}
        if "dataset" in mlp:
            name = mlp["dataset"]
            if not isinstance(name, str) or name not in DATASETS:
                hint = did_you_mean(name, DATASETS) if isinstance(name, str) else ""
                raise SettingError("mlp.dataset", f"unknown dataset {name!r}{hint} (choose from {', '.join(DATASETS)})")
            kw["dataset"] = name
        if "hidden" in mlp:
            h = mlp["hidden"]
            if (not isinstance(h, list) or not 1 <= len(h) <= 8
                    or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4096 for v in h)):
                raise SettingError("mlp.hidden", f"must be a list of 1-8 layer widths in [1, 4096], got {h!r}")
            kw["hidden"] = tuple(h)
        for key, choices in (("activation", ACTIVATIONS), ("norm", NORMS)):
            if key in mlp:
                if not isinstance(mlp[key], str) or mlp[key] not in choices:
                    raise SettingError(f"mlp.{key}", f"{mlp[key]!r} is not one of {', '.join(choices)}")
                kw[key] = mlp[key]
        for key, lo, hi in _INTS:
            if key in mlp:
                v = mlp[key]
                if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                    raise SettingError(f"mlp.{key}", f"must be an integer in [{lo}, {hi}], got {v!r}")
                kw[key] = v
        if "noise" in mlp:
            v = mlp["noise"]
            if not is_number(v) or not 0 <= v <= 10:
                raise SettingError("mlp.noise", f"must be a number in [0, 10], got {v!r}")
            kw["noise"] = float(v)
        problem = cls(device=device, **kw)
        problem.make_dataset()  # surfaces dataset-specific errors (e.g. classes) now
        return problem

    def to_table(self) -> dict[str, Any]:
        mlp: dict[str, Any] = {
            "dataset": self.dataset, "hidden": list(self.hidden), "activation": self.activation, "norm": self.norm,
            "n": self.n, "noise": self.noise, "data_seed": self.data_seed, "init_seed": self.init_seed,
            "eval_every": self.eval_every,
        }
        if self.classes is not None:
            mlp["classes"] = self.classes
        return {"mlp": mlp, "device": self.device}

    def make_dataset(self):
        try:
            return make_dataset(self.dataset, n=self.n, noise=self.noise, seed=self.data_seed, n_classes=self.classes)
        except ValueError as exc:
            raise SettingError("mlp", str(exc)) from None

    @property
    def name(self) -> str:
        return f"mlp:{self.dataset}"

    @property
    def label(self) -> str:
        return self.name

    def prepare_lane(self, table: dict[str, Any]) -> dict[str, Any]:
        for key in ("start", "starts"):
            if key in table:
                raise SettingError(key, "MLP lanes have no start points (all lanes start from the same initial weights)")
        if table.get("burn_in", False) is not False:
            raise SettingError("burn_in", "stationary statistics are for surface lanes (MLP lanes have no burn_in)")
        if table.get("flow", False) is not False:
            raise SettingError("flow", "the gradient-flow reference is for surface lanes (an MLP lane has none)")
        return table if "batch" in table else {**table, "batch": DEFAULT_BATCH}

    def default_lanes(self) -> list[dict[str, Any]]:
        """Four optimizers at batch 32, all from the same initial weights."""
        return [
            {"name": "sgd", "optimizer": "sgd", "lr": 0.1, "batch": DEFAULT_BATCH},
            {"name": "momentum", "optimizer": "momentum", "lr": 0.05, "momentum": 0.9, "batch": DEFAULT_BATCH},
            {"name": "adam", "optimizer": "adam", "lr": 0.01, "batch": DEFAULT_BATCH},
            {"name": "ema-momentum", "optimizer": "ema-momentum", "lr": 0.3, "beta": 0.9, "batch": DEFAULT_BATCH},
        ]

    def make_race(self, lanes: list[LaneConfig], seed: int, history_capacity: int | None):
        from sgdtui.mlp.race import MLPRace  # the race needs the model (torch.nn); a table check does not

        return MLPRace(self, lanes, seed=seed, history_capacity=history_capacity)
