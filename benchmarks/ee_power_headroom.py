"""How much a learned power predictor could gain on EE: ``python -m benchmarks.ee_power_headroom``.

At BERT4beam's settings the strongest cheap EE method is RZF at its EE-best power (:func:`jaxbeam.rzf_ee`, two
passes: two RZFs and two power searches). A learned model that predicts that power from the channel would need
one RZF (plus its own cost). This bounds what it could earn, on fresh channels (``--seed``), P = 1 W, Pc = 0.5 W,
10 dB:

* the quality of RZF at the *oracle* power (the 3-pass power, regularised and transmitted at it): a perfect
  predictor's quality;
* the same with the oracle power off by a log-normal factor ``exp(s Z)`` (capped at P), for s in ``--errors``:
  the accuracy a predictor needs to match two passes;
* throughput at batch ``--batch`` of one RZF and of two passes, interleaved (medians of ``--rounds``): a perfect,
  free predictor's largest speed-up.

Quality is % of the mean per-sample best of SCA and three passes (the references). Writes ``--out`` (json) and
``.md`` beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import jaxbeam as jb
from benchmarks._results import header, markdown_header
from jaxbeam.jobs.report import markdown_table

P, PC, SIGMA2 = 1.0, 0.5, 0.1  # 10 dB
SYSTEMS = ((6, 12), (8, 16))


def measure(K: int, N: int, samples: int, seed: int, errors, batch: int, rounds: int) -> dict:
    H = jb.rayleigh(jax.random.fold_in(jax.random.key(seed), 1000 * K + N), (samples,), K, N)

    def ee(W):
        return np.asarray(jb.energy_efficiency(H, W, SIGMA2, PC), np.float64)

    W3, p3 = jb.rzf_ee(H, P, SIGMA2, PC, passes=3, return_power=True)
    best = np.maximum(ee(jb.sca(H, P, SIGMA2, "ee", PC)), ee(W3))

    def pct(W):
        return 100 * ee(W).mean() / best.mean()

    z = np.random.default_rng(seed).standard_normal(samples)
    out = {
        "K": K,
        "N": N,
        "two_passes_pct": pct(jb.rzf_ee(H, P, SIGMA2, PC, passes=2)),
        "oracle_power_pct": pct(jb.rzf(H, p3, SIGMA2)),
        "power_error_pct": {str(s): pct(jb.rzf(H, jnp.minimum(p3 * np.exp(s * z), P), SIGMA2)) for s in errors},
    }
    Hb = jb.rayleigh(jax.random.key(seed + 1), (batch,), K, N)
    pb = jnp.full((batch,), 0.3 * P)
    one = jax.jit(lambda H, p: jb.rzf(H, p, SIGMA2))
    two = jax.jit(lambda H, p: jb.rzf_ee(H, P, SIGMA2, PC, passes=2))
    times = {"one RZF": [], "two passes": []}
    for f in (one, two):
        jax.block_until_ready(f(Hb, pb))
    for _ in range(rounds):  # interleaved: a drift of a shared machine hits both alike
        for name, f in (("one RZF", one), ("two passes", two)):
            t0 = time.perf_counter()
            jax.block_until_ready(f(Hb, pb))
            times[name].append(time.perf_counter() - t0)
    out["samples_per_s"] = {k: batch / float(np.median(v)) for k, v in times.items()}
    return out


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=1000, help="channels per system (default 1000)")
    p.add_argument("--seed", type=int, default=20261206, help="channel seed (one no design was chosen on)")
    p.add_argument("--errors", default="0.05,0.1,0.2,0.3", help="log-normal power errors s, comma-separated")
    p.add_argument("--batch", type=int, default=4096, help="batch of the timing (default 4096)")
    p.add_argument("--rounds", type=int, default=9, help="interleaved timing rounds (default 9)")
    p.add_argument("--out", type=Path, default=Path("results/ee_power_headroom.json"))
    args = p.parse_args(argv)
    try:
        errors = [float(s) for s in args.errors.split(",")]
    except ValueError:
        p.error(f"--errors must be comma-separated numbers; got {args.errors!r}")
    if args.samples < 2 or args.batch < 1 or args.rounds < 1 or any(s < 0 for s in errors):
        p.error(f"--samples must be >= 2, --batch and --rounds >= 1, --errors >= 0; got {args.samples}, "
                f"{args.batch}, {args.rounds}, {args.errors}")  # fmt: skip
    rows = [measure(K, N, args.samples, args.seed, errors, args.batch, args.rounds) for K, N in SYSTEMS]
    table = markdown_table(
        ["(K, N)", "2 passes %", "oracle power, 1 RZF %", *(f"power off by s = {s} %" for s in errors),
         "1 RZF /s", "2 passes /s", "largest speed-up"],
        [[f"({r['K']}, {r['N']})", r["two_passes_pct"], r["oracle_power_pct"],
          *(r["power_error_pct"][str(s)] for s in errors), f"{r['samples_per_s']['one RZF']:,.0f}",
          f"{r['samples_per_s']['two passes']:,.0f}",
          f"{r['samples_per_s']['one RZF'] / r['samples_per_s']['two passes']:.1f}x"] for r in rows],
        ".2f",
    )  # fmt: skip
    head = header("benchmarks.ee_power_headroom", argv)
    md = "\n".join([
        markdown_header("EE: the headroom of a learned power predictor on RZF", head),
        f"{args.samples} fresh Rayleigh channels per system (seed {args.seed}), P = {P} W, Pc = {PC} W, 10 dB. "
        "Quality: % of the mean per-sample best of SCA and 3 passes of `jb.rzf_ee`. 'oracle power': RZF regularised "
        "and transmitted at the 3-pass power (what a perfect predictor gives at one RZF's cost); 'power off by s': "
        "that power times exp(s Z), Z standard normal, capped at P. Throughput at batch "
        f"{args.batch}, medians of {args.rounds} interleaved rounds (a perfect predictor's cost not counted).",
        "", table, "",
    ])  # fmt: skip
    print(md)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"header": head, "rows": rows}, indent=1))
    args.out.with_suffix(".md").write_text(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
