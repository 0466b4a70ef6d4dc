"""Small MLPs and a trainer that races several optimizer lanes on one network shape.

Design choices (the short version; details in the docstrings below):

- **One batched forward/backward per step.** Every lane owns its *own* leaf parameters (an
  ``nn.Module`` copy) and its own ``torch.optim`` optimizer, so lanes may differ in optimizer,
  lr, batch size and weight decay. Each step, lanes that share a batch size are grouped; inside
  a group the lanes' leaves are ``torch.stack``-ed *inside* the autograd graph and the network
  runs once over the lane dimension: ``batching="vmap"`` runs ``torch.func.functional_call``
  under ``torch.vmap``; ``batching="stacked"`` (the default) runs the same layers written out
  with ``baddbmm``, which on CPU is about 2.5x faster for nets this small because vmap's per-op
  dispatch outweighs the arithmetic (the two agree to float rounding; see the tests). vmap
  stays the generic reference and is used for evaluation. The per-lane losses of all groups are summed and ``backward()`` runs once; since a
  lane's loss depends only on its own slice of the stack, each leaf receives exactly its own
  gradient. Then every lane's ``optimizer.step()`` runs.
- **Different batch sizes: grouped, not padded.** Padding with a mask would be wrong for
  BatchNorm (the padded rows would enter the batch statistics), so lanes are grouped by batch
  size, one vmapped call per group.
- **Fast path.** A group with a single lane skips stack/vmap and calls the lane's own module
  directly: this is exactly a plain PyTorch training step.
- **BatchNorm when batched: functional running stats.** Each lane keeps its own running-mean /
  running-var buffers. The group's buffers are stacked and passed to ``functional_call`` with
  the parameters; BatchNorm updates the stacked (vmapped) buffers in place, and they are copied
  back into the lanes afterwards. So BatchNorm behaves exactly as in a plain loop: batch
  statistics while training, running statistics for evaluation.
  (``replace_all_batch_norm_modules_`` was not used: it drops running stats altogether.)
- **Minibatches.** Each lane samples its indices with replacement from its *own*
  ``torch.Generator`` (seeded with ``LaneSetup.seed``), so adding, removing or re-batching one
  lane never changes another lane's numbers, and two lanes with the same seed see the same
  minibatches (common random numbers for a fair race).
- **Weight decay** is the lane optimizer's own ``weight_decay`` (torch's L2 term, decoupled for
  AdamW), so it is exactly what ``torch.optim`` does with it.
- **No host sync per step.** Each lane's last minibatch loss is kept as a 0-d device tensor;
  the race stages them and syncs once per flush.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, vmap

from sgdtui.mlp.datasets import Dataset

__all__ = [
    "DeviceError",
    "LaneSetup",
    "MLPConfig",
    "MLPConfigError",
    "MLPTrainer",
    "TrainerError",
    "build_mlp",
    "resolve_device",
]

Activation = Literal["relu", "tanh", "gelu"]
Norm = Literal["none", "batchnorm", "layernorm"]
Batching = Literal["stacked", "vmap"]

_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}
_NORMS: dict[str, type[nn.Module] | None] = {
    "none": None,
    "batchnorm": nn.BatchNorm1d,
    "layernorm": nn.LayerNorm,
}


class MLPConfigError(ValueError):
    """An MLP configuration is invalid."""


class DeviceError(ValueError):
    """A device name is invalid or the device is not available."""


class TrainerError(ValueError):
    """A trainer argument (lane index, batch size, lane setup, ...) is invalid."""


# --------------------------------------------------------------------------------------------
# Devices
# --------------------------------------------------------------------------------------------


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> cuda when available else cpu; ``"cpu"``; ``"cuda"`` / ``"cuda:N"``."""
    if isinstance(name, torch.device):
        name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if isinstance(name, str) and (name == "cuda" or name.startswith("cuda:")):
        if not torch.cuda.is_available():
            raise DeviceError(f"device {name!r} requested but CUDA is not available")
        try:
            device = torch.device(name)
        except RuntimeError as exc:
            raise DeviceError(f"invalid device {name!r}: {exc}") from None
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"device {name!r} does not exist ({torch.cuda.device_count()} CUDA devices)")
        return device
    raise DeviceError(f"unknown device {name!r}; use 'auto', 'cpu' or 'cuda'")


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MLPConfig:
    """Shape of an MLP: ``in_dim -> hidden... -> out_dim``.

    Each hidden layer is ``Linear -> [norm] -> activation``. With a norm, the Linear has no bias
    (the norm's shift makes it redundant), so its weight is exactly scale-invariant: that is the
    weight the effective learning rate eta/||w||^2 is reported for.
    """

    hidden: tuple[int, ...] = (32, 32)
    activation: Activation = "relu"
    norm: Norm = "none"
    in_dim: int = 2
    out_dim: int = 2

    def __post_init__(self) -> None:
        hidden = tuple(self.hidden)
        if not all(isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in hidden):
            raise MLPConfigError(f"hidden must be positive ints, got {self.hidden!r}")
        object.__setattr__(self, "hidden", hidden)
        if self.activation not in _ACTIVATIONS:
            raise MLPConfigError(f"unknown activation {self.activation!r}; use one of {', '.join(_ACTIVATIONS)}")
        if self.norm not in _NORMS:
            raise MLPConfigError(f"unknown norm {self.norm!r}; use one of {', '.join(_NORMS)}")
        for field in ("in_dim", "out_dim"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise MLPConfigError(f"{field} must be a positive int, got {value!r}")

    @classmethod
    def for_dataset(cls, dataset: Dataset, **overrides: object) -> "MLPConfig":
        """A config whose in/out widths match ``dataset``."""
        return cls(**{"in_dim": dataset.in_dim, "out_dim": dataset.out_dim, **overrides})  # type: ignore[arg-type]


def _init_linear(layer: nn.Linear, generator: torch.Generator) -> None:
    # PyTorch's default Linear init (kaiming_uniform with a=sqrt(5)): U(-1/sqrt(fan_in), +).
    bound = 1.0 / math.sqrt(layer.in_features)
    with torch.no_grad():
        layer.weight.copy_(torch.rand(layer.weight.shape, generator=generator) * 2 * bound - bound)
        if layer.bias is not None:
            layer.bias.copy_(torch.rand(layer.bias.shape, generator=generator) * 2 * bound - bound)


def build_mlp(config: MLPConfig, init_seed: int = 0) -> nn.Sequential:
    """Build the MLP on CPU with weights drawn from a generator seeded ``init_seed``.

    Same ``init_seed`` -> identical weights (the global RNG is neither used nor advanced).
    """
    generator = torch.Generator(device="cpu").manual_seed(init_seed)
    norm_cls = _NORMS[config.norm]
    layers: list[nn.Module] = []
    width = config.in_dim
    for h in config.hidden:
        linear = nn.utils.skip_init(nn.Linear, width, h, bias=norm_cls is None)
        _init_linear(linear, generator)
        layers.append(linear)
        if norm_cls is not None:
            layers.append(norm_cls(h))
        layers.append(_ACTIVATIONS[config.activation]())
        width = h
    head = nn.utils.skip_init(nn.Linear, width, config.out_dim)
    _init_linear(head, generator)
    layers.append(head)
    return nn.Sequential(*layers)


def _normalized_weight_names(model: nn.Sequential) -> list[str]:
    """Names of Linear weights that feed straight into a BatchNorm/LayerNorm layer."""
    names = []
    modules = list(model.named_children())
    for (name, module), (_, following) in zip(modules, modules[1:]):
        if isinstance(module, nn.Linear) and isinstance(following, (nn.BatchNorm1d, nn.LayerNorm)):
            names.append(f"{name}.weight")
    return names


# --------------------------------------------------------------------------------------------
# Trainer
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LaneSetup:
    """One racer: its optimizer factory (called with the lane's parameter list), minibatch size
    and sampling seed."""

    name: str
    make_optimizer: Callable[[list[Tensor]], torch.optim.Optimizer]
    batch: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TrainerError(f"lane name must be a non-empty string, got {self.name!r}")
        if not callable(self.make_optimizer):
            raise TrainerError(f"lane {self.name!r}: make_optimizer must be callable")
        if isinstance(self.batch, bool) or not isinstance(self.batch, int) or self.batch < 1:
            raise TrainerError(f"lane {self.name!r}: batch must be a positive int, got {self.batch!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TrainerError(f"lane {self.name!r}: seed must be an int, got {self.seed!r}")


_NOISE_SEED_OFFSET = 0x5DEECE66D  # gradient-noise probes use their own stream, never the lane's


@dataclass
class _Lane:
    setup: LaneSetup
    module: nn.Sequential
    params: list[Tensor]
    buffers: list[Tensor]
    optimizer: torch.optim.Optimizer
    generator: torch.Generator


class MLPTrainer:
    """Race L optimizer lanes on copies of one MLP, one batched forward/backward per step.

    All lanes start from ``build_mlp(config, init_seed)``. See the module docstring for how
    batching, BatchNorm, minibatch sampling and weight decay work.
    """

    NOISE_PROBES = 8  # minibatches drawn to estimate E||g_hat - g||^2

    def __init__(
        self,
        dataset: Dataset,
        config: MLPConfig,
        lanes: list[LaneSetup],
        *,
        init_seed: int = 0,
        device: str | torch.device = "cpu",
        batching: Batching = "stacked",
    ) -> None:
        if batching not in ("stacked", "vmap"):
            raise TrainerError(f"unknown batching {batching!r}; use 'stacked' or 'vmap'")
        self.batching = batching
        if config.in_dim != dataset.in_dim or config.out_dim != dataset.out_dim:
            raise TrainerError(
                f"config widths in_dim={config.in_dim}, out_dim={config.out_dim} do not match dataset "
                f"{dataset.name!r} (in_dim={dataset.in_dim}, out_dim={dataset.out_dim})"
            )
        self.dataset = dataset
        self.config = config
        self.init_seed = init_seed
        self.device = resolve_device(device)
        self.task = dataset.task
        self.x_train = dataset.x_train.to(self.device)
        self.y_train = dataset.y_train.to(self.device)
        self.x_val = dataset.x_val.to(self.device)
        self.y_val = dataset.y_val.to(self.device)
        self.n_train = dataset.n_train
        self._all_rows = torch.arange(self.n_train, device=self.device)

        # The template is never trained: it supplies the structure for functional_call.
        self._template = build_mlp(config, init_seed).to(self.device)
        self._param_names = [name for name, _ in self._template.named_parameters()]
        self._param_shapes = [p.shape for p in self._template.parameters()]
        self._buffer_names = [name for name, _ in self._template.named_buffers()]
        self._normalized = [self._param_names.index(n) for n in _normalized_weight_names(self._template)]
        # Every Linear layer's weight (the per-layer read-outs), and each one's squared norm at the
        # shared initialization (a normalized layer whose norm falls far below it has collapsed).
        self._linear = [self._param_names.index(f"{name}.weight") for name, module in self._template.named_children()
                        if isinstance(module, nn.Linear)]
        self.init_norm_sq = [float(p.detach().pow(2).sum()) for p in self._template.parameters()]
        self.n_params = sum(p.numel() for p in self._template.parameters())

        self._lanes: list[_Lane] = []
        # Last minibatch loss per lane: 0-d device tensors (None before a lane's first step).
        # A list, not an indexed buffer, so recording a loss launches no kernel and never syncs.
        self._train_loss: list[Tensor | None] = []
        self._groups_cache: list[list[int]] | None = None
        self._step = 0
        self._vmapped_loss = vmap(self._functional_loss)
        for setup in lanes:
            self.add_lane(setup)

    # ---- lanes --------------------------------------------------------------------------

    @property
    def step_count(self) -> int:
        return self._step

    @property
    def lanes(self) -> tuple[LaneSetup, ...]:
        return tuple(lane.setup for lane in self._lanes)

    def _lane(self, index: int) -> _Lane:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(self._lanes):
            raise TrainerError(f"lane index {index!r} out of range (0..{len(self._lanes) - 1})")
        return self._lanes[index]

    def optimizer(self, index: int) -> torch.optim.Optimizer:
        """Lane ``index``'s optimizer (change ``param_groups[k]["lr"]`` live)."""
        return self._lane(index).optimizer

    def module(self, index: int) -> nn.Sequential:
        """Lane ``index``'s network (its parameters are the lane's leaf tensors)."""
        return self._lane(index).module

    def add_lane(self, setup: LaneSetup) -> int:
        """Add a lane, starting from the shared initial weights. Returns its index."""
        if not isinstance(setup, LaneSetup):
            raise TrainerError(f"expected a LaneSetup, got {type(setup).__name__}")
        self._check_batch(setup.name, setup.batch)
        module = build_mlp(self.config, self.init_seed).to(self.device)
        module.load_state_dict(self._template.state_dict())
        module.train()
        params = list(module.parameters())
        optimizer = setup.make_optimizer(params)
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TrainerError(f"lane {setup.name!r}: make_optimizer returned {type(optimizer).__name__}, not an Optimizer")
        generator = torch.Generator(device=self.device).manual_seed(setup.seed)
        self._lanes.append(_Lane(setup, module, params, list(module.buffers()), optimizer, generator))
        self._train_loss.append(None)
        self._groups_cache = None
        return len(self._lanes) - 1

    def remove_lane(self, index: int) -> LaneSetup:
        """Remove lane ``index``; the other lanes keep their state, generators and numbers."""
        lane = self._lane(index)
        del self._lanes[index]
        del self._train_loss[index]
        self._groups_cache = None
        return lane.setup

    def _check_batch(self, name: str, batch: int) -> None:
        smallest = 2 if self.config.norm == "batchnorm" else 1  # batch statistics need two rows
        if isinstance(batch, bool) or not isinstance(batch, int) or not smallest <= batch <= self.n_train:
            raise TrainerError(
                f"lane {name!r}: batch must be an int in {smallest}..{self.n_train}, got {batch!r}"
            )

    def set_batch(self, index: int, batch: int) -> None:
        """Change lane ``index``'s minibatch size from the next step on."""
        lane = self._lane(index)
        self._check_batch(lane.setup.name, batch)
        lane.setup = dataclasses.replace(lane.setup, batch=batch)
        self._groups_cache = None

    # ---- stepping -----------------------------------------------------------------------

    def _loss(self, output: Tensor, target: Tensor) -> Tensor:
        if self.task == "classification":
            return F.cross_entropy(output, target)
        return F.mse_loss(output, target)

    def _functional_loss(self, params: dict[str, Tensor], buffers: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        return self._loss(functional_call(self._template, (params, buffers), (x,)), y)

    def _groups(self) -> list[list[int]]:
        """Lane indices grouped by batch size (first-appearance order)."""
        if self._groups_cache is None:
            by_batch: dict[int, list[int]] = {}
            for i, lane in enumerate(self._lanes):
                by_batch.setdefault(lane.setup.batch, []).append(i)
            self._groups_cache = list(by_batch.values())
        return self._groups_cache

    def _indices(self, lane: _Lane) -> Tensor:
        """The lane's next minibatch: ``batch`` indices drawn with replacement from its own
        generator, or the whole training set, in order, when ``batch`` is its size (full-batch
        gradient descent: no sampling noise, and the generator is left alone)."""
        if lane.setup.batch == self.n_train:
            return self._all_rows
        return torch.randint(0, self.n_train, (lane.setup.batch,), generator=lane.generator, device=self.device)

    def _sample(self, lane: _Lane) -> tuple[Tensor, Tensor]:
        index = self._indices(lane)
        return self.x_train[index], self.y_train[index]

    def _stacked_forward(self, params: dict[str, Tensor], buffers: dict[str, Tensor], x: Tensor) -> Tensor:
        """The template MLP run on ``x[L, B, in]`` with lane-stacked ``params`` / ``buffers``.

        Written out with ``baddbmm`` because on CPU, for networks this small, vmap's per-op
        dispatch costs more than the arithmetic (it is checked against the vmap path in the
        tests). Training mode: BatchNorm uses batch statistics and updates the stacked running
        stats in place, exactly as ``F.batch_norm`` does.
        """
        h = x
        for name, module in self._template.named_children():
            if isinstance(module, nn.Linear):
                weight_t = params[f"{name}.weight"].transpose(1, 2)
                bias = params.get(f"{name}.bias")
                h = torch.bmm(h, weight_t) if bias is None else torch.baddbmm(bias.unsqueeze(1), h, weight_t)
            elif isinstance(module, nn.BatchNorm1d):
                mean = h.mean(dim=1, keepdim=True)
                var = h.var(dim=1, unbiased=False, keepdim=True)
                with torch.no_grad():
                    n = h.shape[1]
                    buffers[f"{name}.running_mean"].lerp_(mean.squeeze(1), module.momentum)
                    buffers[f"{name}.running_var"].lerp_(var.squeeze(1) * (n / (n - 1)), module.momentum)
                    buffers[f"{name}.num_batches_tracked"].add_(1)
                h = (h - mean) * torch.rsqrt(var + module.eps)
                h = h * params[f"{name}.weight"].unsqueeze(1) + params[f"{name}.bias"].unsqueeze(1)
            elif isinstance(module, nn.LayerNorm):
                mean = h.mean(dim=2, keepdim=True)
                var = h.var(dim=2, unbiased=False, keepdim=True)
                h = (h - mean) * torch.rsqrt(var + module.eps)
                h = h * params[f"{name}.weight"].unsqueeze(1) + params[f"{name}.bias"].unsqueeze(1)
            else:  # activations are elementwise
                h = module(h)
        return h

    def _stacked_losses(self, output: Tensor, target: Tensor) -> Tensor:
        """Per-lane mean losses ``[L]`` from ``output[L, B, out]``."""
        lanes, batch = output.shape[:2]
        if self.task == "classification":
            per_example = F.cross_entropy(output.reshape(lanes * batch, -1), target.reshape(-1), reduction="none")
            return per_example.reshape(lanes, batch).mean(dim=1)
        return (output - target).pow(2).reshape(lanes, -1).mean(dim=1)

    def _group_losses(self, members: list[int]) -> Tensor:
        """One batched forward for lanes ``members`` (same batch size); returns their losses."""
        lanes = self._lanes
        index = torch.stack([self._indices(lanes[i]) for i in members])
        xs, ys = self.x_train[index], self.y_train[index]
        params = {
            name: torch.stack([lanes[i].params[k] for i in members]) for k, name in enumerate(self._param_names)
        }
        buffers = {
            name: torch.stack([lanes[i].buffers[k] for i in members]) for k, name in enumerate(self._buffer_names)
        }
        if self.batching == "vmap":
            self._template.train()
            losses = self._vmapped_loss(params, buffers, xs, ys)
        else:
            losses = self._stacked_losses(self._stacked_forward(params, buffers, xs), ys)
        # BatchNorm updated the stacked running stats in place: hand them back to the lanes.
        for k, name in enumerate(self._buffer_names):
            torch._foreach_copy_([lanes[i].buffers[k] for i in members], list(buffers[name].unbind(0)))
        return losses

    def step(self) -> None:
        """One optimizer update for every lane (a no-op when there are no lanes)."""
        if not self._lanes:
            return
        lanes = self._lanes
        for lane in lanes:
            lane.optimizer.zero_grad(set_to_none=True)
        total: Tensor | None = None
        for members in self._groups():
            if len(members) == 1:  # fast path: exactly a plain PyTorch step
                lane = lanes[members[0]]
                x, y = self._sample(lane)
                loss = self._loss(lane.module(x), y)
                self._train_loss[members[0]] = loss.detach()
                group_total = loss
            else:
                losses = self._group_losses(members)
                for i, loss in zip(members, losses.detach().unbind(0)):
                    self._train_loss[i] = loss
                group_total = losses.sum()
            total = group_total if total is None else total + group_total
        assert total is not None
        total.backward()
        for lane in lanes:
            lane.optimizer.step()
        self._step += 1

    def _split(self, split: str) -> tuple[Tensor, Tensor]:
        if split == "train":
            return self.x_train, self.y_train
        if split == "val":
            return self.x_val, self.y_val
        raise TrainerError(f"unknown split {split!r}; use 'train' or 'val'")

    def flat_weights(self, index: int) -> Tensor:
        """Lane ``index``'s parameters as one detached 1-D vector (parameter order)."""
        return torch.cat([p.detach().reshape(-1) for p in self._lane(index).params]).clone()

    def unflatten(self, flat: Tensor) -> dict[str, Tensor]:
        """``flat[..., n_params]`` -> {parameter name: tensor[..., *shape]}."""
        if flat.shape[-1] != self.n_params:
            raise TrainerError(f"flat weights have {flat.shape[-1]} entries, the MLP has {self.n_params}")
        lead = flat.shape[:-1]
        pieces = torch.split(flat, [math.prod(s) for s in self._param_shapes], dim=-1)
        return {
            name: piece.reshape(*lead, *shape)
            for name, piece, shape in zip(self._param_names, pieces, self._param_shapes)
        }

    @torch.no_grad()
    def batched_loss(
        self, index: int, flat_weights: Tensor, *, split: str = "train", chunk_size: int | None = 64
    ) -> Tensor:
        """Loss (eval mode, full split) of lane ``index``'s network at each row of
        ``flat_weights[K, n_params]``, with the lane's BatchNorm running stats. Returns ``[K]``."""
        lane = self._lane(index)
        x, y = self._split(split)
        flat = flat_weights.to(self.device, torch.float32)
        if flat.dim() != 2:
            raise TrainerError(f"flat_weights must be 2-D [K, n_params], got shape {tuple(flat.shape)}")
        buffers = dict(zip(self._buffer_names, lane.buffers))
        self._template.eval()

        def loss_at(params: dict[str, Tensor]) -> Tensor:
            return self._functional_loss(params, buffers, x, y)

        return vmap(loss_at, chunk_size=chunk_size)(self.unflatten(flat))

    @torch.no_grad()
    def _eval_all(self) -> tuple[Tensor, Tensor | None]:
        """Validation loss (and accuracy) of every lane, eval mode, one lane at a time: on nets this
        small a plain loop is ~4x cheaper than vmap, and a lane's numbers never depend on how many
        other lanes there are."""
        losses, accs = [], []
        # Only BatchNorm behaves differently in eval mode; toggling modes walks every submodule.
        toggle = self.config.norm == "batchnorm"
        for lane in self._lanes:
            if toggle:
                lane.module.eval()
            try:
                out = lane.module(self.x_val)
            finally:
                if toggle:
                    lane.module.train()
            losses.append(self._loss(out, self.y_val))
            if self.task == "classification":
                accs.append((out.argmax(dim=1) == self.y_val).float().mean())
        return torch.stack(losses), (torch.stack(accs) if self.task == "classification" else None)

    @torch.no_grad()
    def device_eval(self) -> Tensor:
        """Per-lane evaluation kept ON the device (no host sync): a float tensor [L, 3 + K] with
        columns val_loss, val_acc (NaN for regression), weight_norm ||w|| over all parameters,
        then ||W||^2 of each of the K weight matrices feeding a norm layer, in layer order (K = 1
        and that column NaN when norm == "none")."""
        n = len(self._lanes)
        width = 3 + max(1, len(self._normalized))
        if n == 0:
            return torch.zeros(0, width, device=self.device)
        val_loss, val_acc = self._eval_all()
        nan = torch.full((n, 1), float("nan"), device=self.device)
        squares = torch.stack(
            [torch.stack([p.detach().pow(2).sum() for p in lane.params]) for lane in self._lanes]
        )
        normalized = squares[:, self._normalized] if self._normalized else nan
        return torch.cat(
            [torch.stack([val_loss.float(), nan[:, 0] if val_acc is None else val_acc.float(),
                          squares.sum(dim=1).sqrt()], dim=1), normalized.float()],
            dim=1,
        )

    def probe_gradient_noise(self, index: int, seed: int) -> Tensor:
        """E||g_hat - g||^2 of lane ``index`` now, as a 0-d device tensor (no sync): the mean
        over NOISE_PROBES minibatches of the lane's batch size of the squared distance between
        the minibatch gradient and the full-training-set gradient, in train mode (BatchNorm on
        copies of its statistics, so the probe leaves the lane untouched). The minibatches are
        drawn from a generator seeded ``seed`` (so the figure at a given step does not depend on
        how often it was asked for before) and run as one stacked forward/backward, the way
        training steps run (about 5x cheaper than vmapping per-probe ``grad``; the tests keep
        that version as the reference). Zero for a full-batch lane."""
        lane = self._lane(index)
        k, batch = self.NOISE_PROBES, lane.setup.batch
        if batch == self.n_train:
            return torch.zeros((), device=self.device)
        generator = torch.Generator(device=self.device).manual_seed(seed)
        rows = torch.randint(0, self.n_train, (k, batch), generator=generator, device=self.device)
        probes = {name: p.detach().expand(k, *p.shape).clone().requires_grad_(True)
                  for name, p in zip(self._param_names, lane.params)}
        full = {name: p.detach()[None].clone().requires_grad_(True) for name, p in zip(self._param_names, lane.params)}

        def scratch(copies: int) -> dict[str, Tensor]:  # BatchNorm updates running stats in place: on copies
            return {name: b.expand(copies, *b.shape).clone() for name, b in zip(self._buffer_names, lane.buffers)}

        with torch.enable_grad():
            probe_loss = self._stacked_losses(self._stacked_forward(probes, scratch(k), self.x_train[rows]),
                                              self.y_train[rows]).sum()
            full_loss = self._stacked_losses(self._stacked_forward(full, scratch(1), self.x_train[None]),
                                             self.y_train[None]).sum()
            names = self._param_names
            minibatch = torch.autograd.grad(probe_loss, [probes[n] for n in names])
            whole = torch.autograd.grad(full_loss, [full[n] for n in names])
        squared = sum((g - w).pow(2).reshape(k, -1).sum(dim=1) for g, w in zip(minibatch, whole))
        return squared.mean().detach()  # type: ignore[union-attr]

    def linear_layers(self) -> list[tuple[str, bool]]:
        """Each Linear layer's weight name and whether it feeds a norm layer, in layer order."""
        return [(self._param_names[k], k in self._normalized) for k in self._linear]

    @torch.no_grad()
    def layer_norms(self) -> np.ndarray:
        """[L, n_linear, 2]: each Linear weight's ||W|| and the ||g|| of its latest minibatch
        gradient (NaN before the lane's first step), synced to the host in one transfer."""
        if not self._lanes:
            return np.zeros((0, len(self._linear), 2))
        nan = torch.tensor(float("nan"), device=self.device)
        rows = []
        for lane in self._lanes:
            weights = [lane.params[k] for k in self._linear]
            rows.append(torch.stack([
                torch.stack([w.detach().norm(), nan if w.grad is None else w.grad.detach().norm()])
                for w in weights]))
        return torch.stack(rows).double().cpu().numpy()

    def last_loss_tensors(self) -> list[Tensor | None]:
        """Each lane's last minibatch loss as a 0-d device tensor, by reference: no kernel, no sync."""
        return list(self._train_loss)

    def metrics(self, *, gradient_noise: bool = True) -> dict[str, object]:
        """Per-lane readouts of the weights now, synced to the host in one transfer (validation
        numbers come from ``device_eval``, staged every eval_every steps). Each per-lane key maps
        to a list in lane order:

        - ``weight_norm``: ||w|| over all parameters;
        - ``effective_lr``: lr/||W||^2 for each weight matrix feeding a norm layer (a tuple per
          lane, in layer order), None when ``norm == "none"``;
        - ``grad_noise``: E||g_hat - g||^2 at the lane's batch size (see ``probe_gradient_noise``),
          None when ``gradient_noise=False``.

        ``lr`` is the first param group's learning rate.
        """
        n = len(self._lanes)
        lrs = [float(lane.optimizer.param_groups[0]["lr"]) for lane in self._lanes]
        result: dict[str, object] = {"step": self._step, "names": [lane.setup.name for lane in self._lanes], "lr": lrs}
        if n == 0:
            return {**result, "weight_norm": [], "effective_lr": [], "grad_noise": []}
        with torch.no_grad():
            squares = torch.stack(
                [torch.stack([p.detach().pow(2).sum() for p in lane.params]) for lane in self._lanes]
            )  # [L, n_param_tensors]
            columns = [squares.sum(dim=1).sqrt(), *(squares[:, k] for k in self._normalized)]
        if gradient_noise:
            # Seeded by the trainer's step: fresh probe minibatches each step, the same at a given step.
            columns.append(torch.stack([self.probe_gradient_noise(i, (lane.setup.seed + _NOISE_SEED_OFFSET + self._step)
                                                                  % (1 << 62))
                                        for i, lane in enumerate(self._lanes)]))
        table = torch.stack([c.float() for c in columns], dim=1).cpu().numpy()  # the one host sync
        result["weight_norm"] = table[:, 0].tolist()
        norm_cols = range(1, 1 + len(self._normalized))
        if self._normalized:
            result["effective_lr"] = [
                tuple(lr / float(table[i, c]) if float(table[i, c]) > 0 else math.nan for c in norm_cols)
                for i, lr in enumerate(lrs)
            ]
        else:
            result["effective_lr"] = [None] * n
        result["grad_noise"] = table[:, -1].tolist() if gradient_noise else [None] * n
        return result

    @torch.no_grad()
    def predict_grid(
        self, lane_index: int, xlim: tuple[float, float], ylim: tuple[float, float], res: int
    ) -> np.ndarray:
        """Lane ``lane_index``'s predictions on a grid, eval mode, in the dataset's standardized
        input coordinates.

        - 2-D classification: class probabilities, shape ``(res, res, n_classes)``; row ``j`` is
          ``y = linspace(*ylim, res)[j]``, column ``i`` is ``x = linspace(*xlim, res)[i]``.
        - 1-D regression: predictions at ``linspace(*xlim, res)``, shape ``(res,)`` (``ylim``
          is unused).
        """
        lane = self._lane(lane_index)
        if isinstance(res, bool) or not isinstance(res, int) or res < 2:
            raise TrainerError(f"res must be an int >= 2, got {res!r}")
        xs = torch.linspace(float(xlim[0]), float(xlim[1]), res, device=self.device)
        lane.module.eval()
        try:
            if self.config.in_dim == 1:
                return lane.module(xs[:, None])[:, 0].cpu().numpy()
            if self.config.in_dim != 2:
                raise TrainerError(f"predict_grid needs 1-D or 2-D inputs, the MLP has in_dim={self.config.in_dim}")
            ys = torch.linspace(float(ylim[0]), float(ylim[1]), res, device=self.device)
            gy, gx = torch.meshgrid(ys, xs, indexing="ij")
            points = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)
            out = lane.module(points)
            if self.task == "classification":
                out = out.softmax(dim=1)
            return out.reshape(res, res, -1).cpu().numpy()
        finally:
            lane.module.train()
