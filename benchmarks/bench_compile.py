"""Would `torch.compile` pay off? The engine's forward + backward at K cells, eager against compiled (real data).

    python benchmarks/bench_compile.py [--k 72] [--out benchmarks/results/compile.json]

Prints, for one thread on this machine: the time of one `Net.loss_and_grad` call eager and compiled (after
warm-up), the first compiled call's time (import of the compiler plus compilation, paid by every train
process), the largest difference between the two paths' gradients, and what a train job of `--steps` steps
would gain or lose. The optimizer update is left out: it is torch's fused kernels already, one call per
group of cells, which the compiler calls as they are.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_engine import DEFAULT_CSV, load_data  # noqa: E402

from genboost.files import write_json  # noqa: E402
from genboost.train.engine_net import Net, Stack  # noqa: E402
from genboost.train.model import layer_sizes  # noqa: E402


def per_call_us(fn, calls: int = 300) -> float:
    for _ in range(20):
        fn()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--k", type=int, default=72, help="cells in the block (default 72, a default job)")
    parser.add_argument("--steps", type=int, default=10_600, help="steps of a train job (default: 200 epochs)")
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV, help="the raw obesity CSV")
    parser.add_argument("--out", type=Path, help="write the figures to this JSON file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    split = load_data(args.csv)
    stack = Stack(args.k, layer_sizes(split.x_train.shape[1], (64, 64)), torch.float32, "cpu")
    stack.load_init(list(range(args.k)))
    grads, net = stack.like(), Net(stack)
    idx = torch.randint(len(split.y_train), (args.k * 32,), generator=torch.Generator().manual_seed(0))
    xb, yb = split.x_train[idx].view(args.k, 32, -1), split.y_train[idx].view(args.k, 32)

    eager_us = per_call_us(lambda: net.loss_and_grad(stack.views, grads.views, xb, yb))
    eager_grads = [g.clone() for g in grads.views]
    start = time.perf_counter()
    compiled = torch.compile(net.loss_and_grad)
    compiled(stack.views, grads.views, xb, yb)
    first_call_s = time.perf_counter() - start
    compiled_us = per_call_us(lambda: compiled(stack.views, grads.views, xb, yb))
    diff = max((a - b).abs().max().item() for a, b in zip(eager_grads, grads.views, strict=True))
    gain_s = (eager_us - compiled_us) * args.steps / 1e6 - first_call_s

    print(f"forward + backward at K={args.k}, 1 thread: eager {eager_us:.0f} us, compiled {compiled_us:.0f} us")
    print(f"first compiled call (compiler import + compilation): {first_call_s:.1f} s")
    print(f"largest gradient difference, compiled vs eager: {diff:.2e}")
    print(f"net gain of a train job of {args.steps} steps: {gain_s:+.1f} s (negative: a loss)")
    figures = {
        "machine": platform.machine(),
        "torch": torch.__version__,
        "k": args.k,
        "eager_us_per_call": eager_us,
        "compiled_us_per_call": compiled_us,
        "first_compiled_call_s": first_call_s,
        "max_gradient_difference": diff,
        "job_steps": args.steps,
        "job_net_gain_s": gain_s,
    }
    if args.out:
        write_json(args.out, figures)
    return figures


if __name__ == "__main__":
    main()
