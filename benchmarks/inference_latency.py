"""Jitted BERT inference latency: ``python -m benchmarks.inference_latency [--smoke] [--presets ...]``.

Prints a table (median / p90 latency, per-sample latency, compile time, parameters, FLOPs per sample,
achieved GFLOP/s and its fraction of a large matmul's rate on this machine) and writes a JSON file
recording device, JAX version and sizes. It is the same job as ``jaxbeam bench`` (same options), which
holds the implementation (:mod:`jaxbeam.jobs.bench`).
"""

from __future__ import annotations

import sys

from jaxbeam.cli import main as jaxbeam_main


def main(argv=None) -> int:
    return jaxbeam_main(["bench", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
