"""Cost and quality of a trained MT-SAO(-lift) against WMMSE: ``python -m benchmarks.sao_cost RUN``.

For each (K, N) (default (16, 16) and (16, 12)) at the run's SNR: samples/s of the jitted model (Q_i steps per
layer) at batch 100 and 4096 and of ``jb.wmmse(tol=1e-5)`` (and RZF) on the same channels, compile excluded
(median of ``--repeats`` timed calls after a warm-up), their ratio, and the mean sum rate each reaches.
``RUN`` is a run directory of ``jaxbeam pretrain --model sao_lift`` (its ``model/``) or of
``jaxbeam quickstart --model sao_lift``. Writes a JSON file.

Timings are wall-clock on a possibly shared machine; compare the ratios measured within one run.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import jax
import numpy as np

import jaxbeam as jb
from jaxbeam.jobs.report import markdown_table
from jaxbeam.jobs.sao import load_sao, sao_model


def median_seconds(fn, repeats):
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="SAO run directory (holding config.json and window_*/), or its parent")
    ap.add_argument("--configs", nargs="+", default=["16,16", "16,12"], help="K,N pairs")
    ap.add_argument("--batches", nargs="+", type=int, default=[100, 4096])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default="runs/bench/sao_cost.json")
    args = ap.parse_args(argv)

    run = Path(args.run)
    cfg, params = load_sao(run if (run / "config.json").is_file() and (run / "window_0").is_dir() else run / "model")
    model = sao_model(cfg)
    apply = jax.jit(lambda p, H: model.apply({"params": p}, H, cfg.P))
    wmmse = jax.jit(lambda H: jb.wmmse(H, cfg.P, cfg.sigma2, tol=1e-5))
    rzf = jax.jit(lambda H: jb.rzf(H, cfg.P, cfg.sigma2))
    rows, records = [], []
    for pair in args.configs:
        K, N = (int(v) for v in pair.split(","))
        for B in args.batches:
            H = jb.rayleigh(jax.random.key(7), (B,), K, N)
            t_model = median_seconds(lambda H=H: apply(params, H), args.repeats)
            t_wmmse = median_seconds(lambda H=H: wmmse(H), args.repeats)
            t_rzf = median_seconds(lambda H=H: rzf(H), args.repeats)
            sr = {
                name: float(np.mean(jb.sum_rate(H, W, cfg.sigma2)))
                for name, W in (("sao", apply(params, H)), ("wmmse", wmmse(H)), ("rzf", rzf(H)))
            }
            rec = {"K": K, "N": N, "batch": B, "sao_s": t_model, "wmmse_s": t_wmmse, "rzf_s": t_rzf, **sr}
            records.append(rec)
            rows.append(
                [
                    f"({K}, {N})",
                    B,
                    f"{B / t_model:,.0f}",
                    f"{B / t_wmmse:,.0f}",
                    f"{B / t_rzf:,.0f}",
                    f"{t_wmmse / t_model:.2f}",
                    f"{100 * sr['sao'] / sr['wmmse']:.1f}",
                    f"{100 * sr['rzf'] / sr['wmmse']:.1f}",
                ]
            )
            print(" | ".join(str(c) for c in rows[-1]), flush=True)
    header = ["(K, N)", "batch", "SAO [samples/s]", "WMMSE [samples/s]", "RZF [samples/s]", "SAO speed / WMMSE"]
    header += ["SAO % of WMMSE", "RZF % of WMMSE"]
    print()
    print(markdown_table(header, rows))
    meta = {"jax": jax.__version__, "backend": jax.default_backend(), "machine": platform.processor()}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "config": cfg.to_dict(), "results": records}, indent=1, default=str))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
