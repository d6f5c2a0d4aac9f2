"""MT-SAO off its training schedule, on fresh channels: ``python -m benchmarks.sao_generalisation --run RUN``.

Paper 002 claims its model serves configurations it did not train on. This measures a trained MT-SAO run
(``jaxbeam pretrain --model sao_lift --workdir RUN``) on channels from a seed never used to choose a design:

* every (K, N) with K, N in ``--sizes`` (default 6, 10, 14: none is on the cpu preset's 4, 8, 12, 16 schedule);
* a random-mask test set: K and N drawn uniformly from 1..K_m and 1..N_m per sample, padded to (K_m, N_m) with
  user and antenna masks, as the model's inputs are in training.

For each: the model's mean sum rate as % of converged WMMSE's on the same channels (95 % confidence interval of
the paired ratio), RZF's, and WMMSE-k's for k in 1, 2, 3, 5, 10 (:func:`jaxbeam.wmmse_fixed`), with the smallest
k that reaches the model's quality. Speeds are in ``benchmarks.frontier``. Writes ``results/sao_generalisation``
``.md`` and ``.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import jaxbeam as jb
from benchmarks._results import header, markdown_header
from benchmarks.frontier import quality
from jaxbeam.data.streams import stream
from jaxbeam.jobs.load import load_beamformer
from jaxbeam.jobs.report import markdown_table
from jaxbeam.train.sources import masked_channels

BUDGETS = (1, 2, 3, 5, 10)


def score(bf, H, P, sigma2, mask=None, antenna_mask=None) -> dict:
    """Sum rates per sample of the model, RZF, WMMSE-k and converged WMMSE; quality vs converged WMMSE."""
    sr = lambda W: np.asarray(jb.sum_rate(H, W, sigma2, mask=mask), np.float64)
    ref = sr(jax.jit(lambda H: jb.wmmse(H, P, sigma2, tol=1e-5, mask=mask))(H))
    out = {}
    methods = {
        "MT-SAO": lambda H: bf(H, P, sigma2, mask=mask, antenna_mask=antenna_mask),
        "RZF": lambda H: jb.rzf(H, P, sigma2, mask=mask),
    }
    methods.update({f"WMMSE-{k}": (lambda H, k=k: jb.wmmse_fixed(H, P, sigma2, k, mask=mask)) for k in BUDGETS})
    for name, fn in methods.items():
        q, ci = quality(sr(jax.jit(fn)(H)), ref)
        out[name] = {"quality_pct": q, "ci95": ci}
    reach = [k for k in BUDGETS if out[f"WMMSE-{k}"]["quality_pct"] >= out["MT-SAO"]["quality_pct"]]
    out["smallest_k_at_model_quality"] = reach[0] if reach else None
    return out


def random_masks(Km: int, Nm: int, n: int, seed: int):
    """``n`` samples with K, N uniform in 1..Km, 1..Nm, padded to (Km, Nm) (masked rows / columns zero):
    ``(H, mask, antenna_mask)``, drawn as the model's fixed sets are (:func:`jaxbeam.train.sources.masked_channels`).
    Classical methods need no antenna mask: their beams lie in the channels' row space, so they put nothing on a
    zero column."""
    sizes = stream("fixed_set", seed, 1)
    configs = np.stack([sizes.integers(1, Km + 1, n), sizes.integers(1, Nm + 1, n)], axis=1)
    b = masked_channels(Km, Nm, configs, 1, seed=seed)
    return jnp.asarray(b["H"]), jnp.asarray(b["mask"]), jnp.asarray(b["antenna_mask"])


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="an MT-SAO run directory")
    p.add_argument("--sizes", default="6,10,14", help="K and N values, comma-separated (default 6,10,14)")
    p.add_argument("--samples", type=int, default=512, help="channels per configuration")
    p.add_argument("--seed", type=int, default=20261207, help="channel seed (one no design was chosen on)")
    p.add_argument("--out", type=Path, default=Path("results/sao_generalisation.json"))
    args = p.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        p.error(f"--sizes must be comma-separated ints; got {args.sizes!r}")
    try:
        bf = load_beamformer(args.run)
    except (ValueError, FileNotFoundError) as e:
        p.error(f"--run: {e}")
    if bf.kind != "sao":
        p.error(f"--run must be an MT-SAO run; {args.run} holds a {bf.kind.upper()} run")
    P, s2 = 1.0, bf.sigma2
    rows = []
    key = jax.random.key(args.seed)
    for K in sizes:
        for N in sizes:
            if K > bf.K or N > bf.N:
                continue
            H = jb.rayleigh(jax.random.fold_in(key, 100 * K + N), (args.samples,), K, N)
            rows.append({"set": f"({K}, {N})", "K": K, "N": N, **score(bf, H, P, s2)})
            print(rows[-1]["set"], f"{rows[-1]['MT-SAO']['quality_pct']:.2f} %", flush=True)
    H, mask, antenna_mask = random_masks(bf.K, bf.N, args.samples, args.seed)
    rows.append({"set": f"random masks in [1, {bf.K}] x [1, {bf.N}]", **score(bf, H, P, s2, mask, antenna_mask)})
    head = header("benchmarks.sao_generalisation", argv)
    cols = ["channels", "MT-SAO", "RZF", *(f"WMMSE-{k}" for k in BUDGETS), "smallest k at the model's quality"]
    fmt = lambda r, m: f"{r[m]['quality_pct']:.2f} +- {r[m]['ci95']:.2f}"
    table = [[r["set"], *(fmt(r, m) for m in ["MT-SAO", "RZF", *(f"WMMSE-{k}" for k in BUDGETS)]),
              r["smallest_k_at_model_quality"] or "> 10"] for r in rows]  # fmt: skip
    md = "\n".join([
        markdown_header("MT-SAO off its training schedule", head),
        f"Run {args.run} (trained at {10 * np.log10(P / s2):.0f} dB). Mean sum rate as % of converged WMMSE on the "
        f"same {args.samples} fresh Rayleigh channels per row (seed {args.seed}), +- 95 % confidence interval.",
        "", markdown_table(cols, table), "",
    ])  # fmt: skip
    print(md)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"header": head, "run": str(args.run), "rows": rows}, indent=1))
    args.out.with_suffix(".md").write_text(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
