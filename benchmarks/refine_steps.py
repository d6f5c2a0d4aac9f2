"""RZF followed by Q steps of ``jb.refine``: ``python -m benchmarks.refine_steps [--samples 128]``.

Mean sum rate [bit/s/Hz] on i.i.d. Rayleigh channels, P = 1 W, of RZF and of RZF refined by Q default
(backtracking) steps and by Q steps of paper 002's fixed step 1e-2, beside WMMSE (``jb.wmmse`` defaults),
at BERT4beam's setting and where RZF is weak (K = N, K > N at 20 dB). Each refinement is timed jitted,
after compilation (wall-clock on a possibly shared machine).

Second table: paper 002's fixed step eta = 1e-2 read two ways (``jb.refine(..., step_reading=)``): on each
sample's own gradient, or on the gradient of the batch-mean utility (each sample moves eta / B, B = ``--batch``,
002's 128), from LMMSE (RZF) at 002's systems (16, 16), (16, 12) and (40, 40), 20 dB. Writes
``results/refine_steps.md`` and ``.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp

import jaxbeam as jb
from benchmarks._results import header, markdown_header
from jaxbeam.jobs.report import markdown_table

SETTINGS = [((6, 12), 0.1), ((8, 8), 0.01), ((12, 8), 0.01)]  # ((K, N), sigma2): 10 dB, 20 dB, 20 dB
STEPS = (5, 20, 100)
READING_SYSTEMS = ((16, 16), (16, 12), (40, 40))  # paper 002's, 20 dB
READING_STEPS = (1, 5, 20)


def readings(batch: int, seed: int = 2) -> list[dict]:
    """Mean sum rate from LMMSE after Q steps of eta = 1e-2 under each reading, beside WMMSE."""
    rows = []
    for K, N in READING_SYSTEMS:
        H = jb.rayleigh(jax.random.key(seed), (batch,), K, N)
        W0 = jb.rzf(H, 1.0, 0.01)
        sr = lambda W, H=H: float(jnp.mean(jb.sum_rate(H, W, 0.01)))
        row = {"K": K, "N": N, "snr_db": 20, "batch": batch, "lmmse": sr(W0), "wmmse": sr(jb.wmmse(H, 1.0, 0.01))}
        for reading in ("sample", "batch_mean"):
            for q in READING_STEPS:
                W = jb.refine(H, W0, 1.0, 0.01, steps=q, step_size=1e-2, step_reading=reading, project="sphere")
                row[f"{reading}_{q}"] = sr(W)
        rows.append(row)
    return rows


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
    p.add_argument("--batch", type=int, default=128, help="B of the batch-mean reading (002: 128)")
    p.add_argument("--out", type=Path, default=Path("results/refine_steps.json"))
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    cols = ["(K, N)", "SNR [dB]", "RZF"]
    cols += [f"+{q} steps" for q in STEPS] + [f"+{q} fixed 1e-2" for q in STEPS] + ["WMMSE"]
    first = markdown_table(cols, run(args.samples, args.seed), ".2f")
    rows = readings(args.batch)
    second = markdown_table(
        ["(K, N)", "LMMSE", *(f"per sample, Q={q}" for q in READING_STEPS),
         *(f"batch mean, Q={q}" for q in READING_STEPS), "WMMSE"],
        [[f"({r['K']}, {r['N']})", r["lmmse"], *(r[f"sample_{q}"] for q in READING_STEPS),
          *(r[f"batch_mean_{q}"] for q in READING_STEPS), r["wmmse"]] for r in rows],
        ".2f",
    )  # fmt: skip
    head = header("benchmarks.refine_steps", argv)
    md = "\n".join([
        markdown_header("Gradient refinement steps (jb.refine)", head),
        f"Mean sum rate [bit/s/Hz], {args.samples} Rayleigh channels, P = 1 W (samples/s of the refinement, jitted):",
        "", first, "",
        f"Paper 002's eta = 1e-2 read two ways, from LMMSE, 20 dB, {args.batch} channels (batch-mean: each sample "
        f"moves eta / {args.batch}); steps onto the power sphere as eq. 8 writes them:",
        "", second, "",
    ])  # fmt: skip
    print(md)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"header": head, "readings": rows}, indent=1))
    args.out.with_suffix(".md").write_text(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
