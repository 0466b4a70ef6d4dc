"""Plain-PyTorch baseline for MLP training throughput, and the same measurement for MLPTrainer.

Run standalone to print steps/s for the bare loop and for the trainer with 1 and 4 lanes:

    .venv/bin/python benchmarks/mlp_baseline.py [--device auto|cpu|cuda] [--steps N]

The targets: one trainer lane >= 0.9x the bare loop; four lanes >= 1x the bare loop's *total*
(i.e. 4 x trainer steps/s >= bare steps/s, since a trainer step advances every lane).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sgdtui.mlp.datasets import Dataset, make_dataset  # noqa: E402
from sgdtui.mlp.model import LaneSetup, MLPConfig, MLPTrainer, build_mlp, resolve_device  # noqa: E402

__all__ = ["bare_loop_steps_per_s", "make_optimizer_factory", "trainer_lane_steps_per_s"]

_WARMUP_STEPS = 20


def make_optimizer_factory(optimizer: str, lr: float | None = None) -> Callable[[list[torch.Tensor]], torch.optim.Optimizer]:
    """``"adam"`` (lr 1e-2) or ``"sgd"`` (lr 1e-1) as a LaneSetup.make_optimizer factory."""
    if optimizer == "adam":
        return lambda params: torch.optim.Adam(params, lr=1e-2 if lr is None else lr)
    if optimizer == "sgd":
        return lambda params: torch.optim.SGD(params, lr=1e-1 if lr is None else lr)
    raise ValueError(f"unknown benchmark optimizer {optimizer!r}; use 'adam' or 'sgd'")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _steps_per_s(one_step: Callable[[], None], steps: int, device: torch.device) -> float:
    """Warm up, then time ``steps`` calls; CUDA is synchronized so queued kernels count."""
    for _ in range(_WARMUP_STEPS):
        one_step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        one_step()
    _sync(device)
    return steps / (time.perf_counter() - start)


def bare_loop_steps_per_s(
    dataset: Dataset,
    config: MLPConfig,
    batch: int,
    steps: int,
    device: str | torch.device,
    optimizer: str = "adam",
) -> float:
    """Steps/s of the plainest PyTorch loop: model(x), loss, zero_grad, backward, step, with
    random minibatches drawn by ``torch.randint`` from a seeded generator on the device."""
    dev = resolve_device(device)
    model = build_mlp(config, 0).to(dev)
    opt = make_optimizer_factory(optimizer)(list(model.parameters()))
    x_train, y_train = dataset.x_train.to(dev), dataset.y_train.to(dev)
    loss_fn = F.cross_entropy if dataset.task == "classification" else F.mse_loss
    generator = torch.Generator(device=dev).manual_seed(0)
    n = x_train.shape[0]

    def one_step() -> None:
        index = torch.randint(0, n, (batch,), generator=generator, device=dev)
        loss = loss_fn(model(x_train[index]), y_train[index])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return _steps_per_s(one_step, steps, dev)


def trainer_lane_steps_per_s(
    n_lanes: int,
    dataset: Dataset,
    config: MLPConfig,
    batch: int,
    steps: int,
    device: str | torch.device,
    optimizer: str = "adam",
    *,
    batching: str = "stacked",
) -> float:
    """Trainer steps/s with ``n_lanes`` identical-optimizer lanes (different seeds, same batch).
    One trainer step advances every lane, so lane-steps/s is ``n_lanes`` times this."""
    factory = make_optimizer_factory(optimizer)
    lanes = [LaneSetup(f"{optimizer}-{i}", factory, batch=batch, seed=i) for i in range(n_lanes)]
    trainer = MLPTrainer(dataset, config, lanes, device=device, batching=batching)  # type: ignore[arg-type]
    return _steps_per_s(trainer.step, steps, trainer.device)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3, help="report the median of this many runs")
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads on CPU")
    parser.add_argument("--batching", default="stacked", choices=["stacked", "vmap"])
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    dataset = make_dataset("moons", n=1000, seed=0)
    config = MLPConfig.for_dataset(dataset, hidden=(32, 32))
    batch = 64
    device = resolve_device(args.device)

    runs: dict[str, list[float]] = {"bare": [], "1": [], "4": []}
    # Interleaved repeats, median per kind: the machine is shared, so load drifts between runs.
    for _ in range(args.repeats):
        runs["bare"].append(bare_loop_steps_per_s(dataset, config, batch, args.steps, device, args.optimizer))
        for n_lanes in (1, 4):
            runs[str(n_lanes)].append(trainer_lane_steps_per_s(
                n_lanes, dataset, config, batch, args.steps, device, args.optimizer, batching=args.batching
            ))
    bare = statistics.median(runs["bare"])
    print(f"moons, hidden (32, 32), batch {batch}, {args.optimizer}, device {device}, batching {args.batching}, "
          f"median of {args.repeats} interleaved x {args.steps} steps")
    print(f"bare loop          : {bare:9.1f} steps/s")
    for n_lanes in (1, 4):
        rate = statistics.median(runs[str(n_lanes)])
        target = 0.9 if n_lanes == 1 else 1.0
        ratio = rate * n_lanes / bare
        verdict = "ok" if ratio >= target else "BELOW TARGET"
        print(f"trainer {n_lanes} lane{'s' if n_lanes > 1 else ' '}   : {rate:9.1f} steps/s "
              f"= {rate * n_lanes:9.1f} lane-steps/s = {ratio:5.2f}x bare (target {target}x: {verdict})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
