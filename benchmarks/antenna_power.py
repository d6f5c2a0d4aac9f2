"""Per-antenna power constraints: ``python -m benchmarks.antenna_power [--samples 256]``.

Mean sum rate [bit/s/Hz] on i.i.d. Rayleigh channels with ``P_n = P / N`` per antenna (P = 1 W) of
``jb.wmmse_antenna`` beside the two feasible baselines it starts from (RZF and total-power WMMSE scaled until
their fullest antenna meets its budget, ``jb.scale_antenna_power``) and beside total-power WMMSE (budget P, an
upper reference: its feasible set contains the per-antenna one); the share of samples on which it is at least
both baselines, its worst antenna's power over its budget, its mean iterations and its throughput (jitted,
after compilation; wall-clock on a possibly shared machine).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxbeam as jb
from jaxbeam.jobs.report import markdown_table

SETTINGS = [((6, 12), 0.1), ((8, 16), 0.1), ((8, 8), 0.01), ((12, 12), 0.01)]  # ((K, N), sigma2)


def run(samples: int, seed: int = 0):
    rows = []
    for (K, N), s2 in SETTINGS:
        H = jb.rayleigh(jax.random.key(seed), (samples,), K, N)
        P, P_n = 1.0, 1.0 / N
        solve = jax.jit(lambda H, s2=s2, P_n=P_n: jb.wmmse_antenna(H, P_n, s2, return_info=True))
        jax.block_until_ready(solve(H))
        t0 = time.perf_counter()
        W, info = jax.block_until_ready(solve(H))
        rate = samples / (time.perf_counter() - t0)
        sr = lambda W, H=H, s2=s2: np.asarray(jb.sum_rate(H, W, s2))  # noqa: E731
        ours = sr(W)
        scaled = [sr(jb.scale_antenna_power(W0, P_n)) for W0 in (jb.rzf(H, P, s2), jb.wmmse(H, P, s2))]
        total = sr(jb.wmmse(H, P, s2, tol=1e-5))
        worst = float(np.max(np.sum(np.abs(np.asarray(W, np.complex128)) ** 2, axis=-2)) / P_n)
        at_least = float(np.mean(ours >= np.maximum(*scaled) * (1 - 1e-6)))
        iters = float(jnp.mean(info["iterations"]))
        means = [ours.mean(), scaled[0].mean(), scaled[1].mean(), total.mean()]
        rows.append([f"({K}, {N})", f"{10 * np.log10(P / s2):.0f}", *means, f"{100 * at_least:.1f}", f"{worst:.7f}",
                     f"{iters:.0f}", f"{rate:,.0f}"])  # fmt: skip
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=256)
    args = ap.parse_args(argv)
    header = ["(K, N)", "SNR dB", "wmmse_antenna", "scaled RZF", "scaled WMMSE", "WMMSE (total P)",
              ">= both %", "max P_n use", "iterations", "samples/s"]  # fmt: skip
    print(markdown_table(header, run(args.samples)))


if __name__ == "__main__":
    main()
