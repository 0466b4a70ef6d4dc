"""Replay memory and speed: peak RSS and steps/s of `sgdtui replay` (streamed) next to the whole-
history way it wrote files before and a plain streaming loop, in one run.

    python benchmarks/replay_memory.py [--long] [--lanes 4]

Each figure runs in a child process of its own (peak RSS is per process): 10^5 steps by default,
10^5 and 10^6 with --long (the 10^6 runs take minutes each). The script: --lanes single-start SGD
lanes on the pathological surface.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time, csv
from pathlib import Path
import torch
torch.set_num_threads(1)
mode, script, out, steps = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
out.mkdir(parents=True, exist_ok=True)
started = time.perf_counter()
if mode == "streamed":
    from sgdtui.engine.replay import run_replay
    from sgdtui.engine.script import load_script
    run_replay(load_script(script), out, steps=steps)
elif mode == "whole-history":
    from sgdtui.engine.session import Session
    session = Session.from_script(script, history_capacity=None)
    session.run(steps)
    session.race.write_outputs(out)
else:  # a plain streaming loop: torch.optim per lane, each row written as it is computed
    import tomllib
    lanes = tomllib.loads(Path(script).read_text())["lanes"]
    def loss_of(w):
        return torch.tanh(w[0]) ** 2 + 0.01 * torch.abs(w[1]) + torch.sigmoid(w[1])
    with open(out / "trajectories.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(("lane", "start", "step", "x", "y", "loss", "lr"))
        for lane in lanes:
            w = torch.tensor([-4.0, 5.0], dtype=torch.float64, requires_grad=True)
            opt = torch.optim.SGD([w], lr=lane["lr"])
            for step in range(steps + 1):
                loss = loss_of(w)
                writer.writerow((lane["name"], 0, step, repr(float(w[0])), repr(float(w[1])), repr(float(loss)), repr(lane["lr"])))
                if step == steps:
                    break
                opt.zero_grad()
                loss.backward()
                opt.step()
elapsed = time.perf_counter() - started
print(json.dumps({"seconds": elapsed, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "csv_mib": (out / "trajectories.csv").stat().st_size / 2**20}))
"""


def script_text(lanes: int) -> str:
    body = "version = 1\nsteps = 10\n[problem]\nsurface = \"pathological\"\n"
    for k in range(lanes):
        body += f"[[lanes]]\nname = \"gd-{k}\"\noptimizer = \"sgd\"\nlr = {0.05 * (k + 1)}\n"
    return body


def measure(mode: str, script: Path, steps: int, workdir: Path) -> dict:
    out = workdir / f"{mode}-{steps}"
    done = subprocess.run([sys.executable, "-c", CHILD, mode, str(script), str(out), str(steps)],
                          capture_output=True, text=True, check=True)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    for f in out.iterdir():
        f.unlink()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", action="store_true", help="also 10^6 steps (several minutes per run)")
    parser.add_argument("--lanes", type=int, default=4)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="sgdtui-replay-bench-"))
    script = workdir / "lanes.toml"
    script.write_text(script_text(args.lanes))
    sizes = (100_000, 1_000_000) if args.long else (100_000,)
    print(f"{args.lanes} single-start SGD lanes on pathological; peak RSS of the whole process")
    print(f"{'steps':>9} {'run':<26} {'peak RSS MiB':>13} {'steps/s':>10} {'lane-steps/s':>13} {'CSV MiB':>8}")
    for steps in sizes:
        for mode in ("streamed", "whole-history", "plain-streaming-loop"):
            f = measure(mode, script, steps, workdir)
            label = {"streamed": "sgdtui replay (streamed)", "whole-history": "whole history (before)",
                     "plain-streaming-loop": "plain streaming loop"}[mode]
            print(f"{steps:>9} {label:<26} {f['peak_rss_mib']:>13.0f} {steps / f['seconds']:>10.0f} "
                  f"{steps * args.lanes / f['seconds']:>13.0f} {f['csv_mib']:>8.1f}")


if __name__ == "__main__":
    main()
