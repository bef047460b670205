"""CPU/GPU forward time of the PARE network per batch size (figures for docs/benchmarks.md).

Usage: python scripts/benchmark_network.py [--batches 1 4 8] [--iters 10] [--device cpu]
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from pare_ros.network import PARE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    model = PARE().eval().to(args.device)
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, device {args.device}")
    for batch in args.batches:
        x = torch.randn(batch, 3, 224, 224, device=args.device)
        times = []
        with torch.inference_mode():
            for i in range(args.warmup + args.iters):
                t = time.perf_counter()
                model(x)
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                if i >= args.warmup:
                    times.append(time.perf_counter() - t)
        p50 = statistics.median(times)
        print(f"batch {batch}: p50 {p50 * 1000:.1f} ms per forward, {p50 / batch * 1000:.1f} ms per person "
              f"(min {min(times) * 1000:.1f} ms, {args.iters} iters)")


if __name__ == "__main__":
    main()
