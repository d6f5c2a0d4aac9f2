"""RZF followed by Q steps of ``jb.refine``: ``python -m benchmarks.refine_steps [--samples 128]``.

Mean sum rate [bit/s/Hz] on i.i.d. Rayleigh channels, P = 1 W, of RZF and of RZF refined by Q default
(backtracking) steps and by Q steps of paper 002's fixed step 1e-2, beside WMMSE (``jb.wmmse`` defaults),
at BERT4beam's setting and where RZF is weak (K = N, K > N at 20 dB). Each refinement is timed jitted,
after compilation (wall-clock on a possibly shared machine).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

import jaxbeam as jb
from jaxbeam.jobs.report import markdown_table

SETTINGS = [((6, 12), 0.1), ((8, 8), 0.01), ((12, 8), 0.01)]  # ((K, N), sigma2): 10 dB, 20 dB, 20 dB
STEPS = (5, 20, 100)


def run(samples: int, seed: int = 1):
    rows = []
    for (K, N), s2 in SETTINGS:
        H = jb.rayleigh(jax.random.key(seed), (samples,), K, N)
        rzf = jb.rzf(H, 1.0, s2)
        sr = lambda W, H=H, s2=s2: float(jnp.mean(jb.sum_rate(H, W, s2)))
        row = [f"({K}, {N})", f"{10 * jnp.log10(1 / s2):.0f}", sr(rzf)]
        for step_size in (None, 1e-2):
            for q in STEPS:
                f = jax.jit(lambda H, W, q=q, e=step_size, s2=s2: jb.refine(H, W, 1.0, s2, steps=q, step_size=e))
                jax.block_until_ready(f(H, rzf))
                t0 = time.perf_counter()
                W = jax.block_until_ready(f(H, rzf))
                row.append(f"{sr(W):.2f} ({samples / (time.perf_counter() - t0):,.0f}/s)")
        row.append(sr(jb.wmmse(H, 1.0, s2)))
        rows.append(row)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=128)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    header = ["(K, N)", "SNR [dB]", "RZF"]
    header += [f"+{q} steps" for q in STEPS] + [f"+{q} fixed 1e-2" for q in STEPS] + ["WMMSE"]
    print(f"Mean sum rate, {args.samples} Rayleigh channels, P = 1 W (samples/s of the refinement, jitted)\n")
    print(markdown_table(header, run(args.samples, args.seed), ".2f"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
