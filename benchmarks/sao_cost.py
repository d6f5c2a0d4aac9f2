"""Cost and quality of a trained MT-SAO(-lift) against WMMSE: ``python -m benchmarks.sao_cost RUN``.

For each (K, N) (default (16, 16) and (16, 12)) at the run's SNR: samples/s of the jitted model (Q_i steps per
layer, ``--infer-steps``, default the run's) at batch 100 and 4096 and of ``jb.wmmse(tol=1e-5)``, RZF and plain
gradient ascent from RZF with as many steps as the model takes (T Q_i backtracking steps of ``jb.refine``, the
online optimiser without learning) on the same channels, compile excluded (median of ``--repeats`` timed calls
after a warm-up), the mean sum rate each reaches, and WMMSE stopped after k iterations (k in
:data:`jaxbeam.jobs.sao.LADDER`): the model's speed is stated against the cheapest WMMSE-k that reaches at least its
quality on the same channels (converged WMMSE runs far past the quality being matched).
``RUN`` is a run directory of ``jaxbeam pretrain --model sao_lift`` (its ``model/``) or of
``jaxbeam quickstart --model sao_lift``; ``--untrained PRESET`` times that preset's model at its initial
weights instead (the architecture's cost, e.g. ``paper``'s at (40, 40) where no trained model exists: its sum
rate is then LMMSE + the steps', not a trained model's). Writes a JSON file.

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
from jaxbeam.configs import SAO_PRESETS, get_sao_preset
from jaxbeam.jobs.report import markdown_table
from jaxbeam.jobs.sao import LADDER, initial_params, load_sao, sao_model


def median_seconds(fn, repeats):
    """``(median seconds of repeats timed calls after a warm-up, the last call's output)``."""
    out = jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", nargs="?", help="SAO run directory (holding config.json and window_*/), or its parent")
    ap.add_argument("--untrained", choices=tuple(SAO_PRESETS), help="time this preset's model at its initial weights")
    ap.add_argument("--configs", nargs="+", default=["16,16", "16,12"], help="K,N pairs")
    ap.add_argument("--batches", nargs="+", type=int, default=[100, 4096])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--infer-steps", nargs="+", type=int, help="Q_i values to measure (default: the run's)")
    ap.add_argument("--out", default="runs/bench/sao_cost.json")
    args = ap.parse_args(argv)

    if (args.run is None) == (args.untrained is None):
        ap.error("give a trained RUN or --untrained PRESET (exactly one)")
    if args.untrained:
        cfg = get_sao_preset(args.untrained)
        params = initial_params(cfg)
    else:
        run = Path(args.run)
        cfg, params = load_sao(
            run if (run / "config.json").is_file() and (run / "window_0").is_dir() else run / "model"
        )
    wmmse = jax.jit(lambda H: jb.wmmse(H, cfg.P, cfg.sigma2, tol=1e-5))
    rzf = jax.jit(lambda H: jb.rzf(H, cfg.P, cfg.sigma2))
    ladder = {k: jax.jit(lambda H, k=k: jb.wmmse_fixed(H, cfg.P, cfg.sigma2, k)) for k in LADDER}
    rows, records = [], []
    for q in args.infer_steps or [cfg.infer_steps]:
        if q < 0:
            raise SystemExit(f"--infer-steps must be >= 0; got {q}")
        model = sao_model(cfg, steps=q)
        apply = jax.jit(lambda p, H, model=model: model.apply({"params": p}, H, cfg.P))
        n = cfg.num_layers * q
        ga = jax.jit(lambda H, n=n: jb.refine(H, jb.rzf(H, cfg.P, cfg.sigma2), cfg.P, cfg.sigma2, "sr", n))
        for pair in args.configs:
            K, N = (int(v) for v in pair.split(","))
            for B in args.batches:
                H = jb.rayleigh(jax.random.key(7), (B,), K, N)
                timed = {
                    name: median_seconds(fn, args.repeats)
                    for name, fn in (
                        ("sao", lambda H=H, f=apply: f(params, H)),
                        ("wmmse", lambda H=H: wmmse(H)),
                        ("rzf", lambda H=H: rzf(H)),
                        ("ga", lambda H=H, f=ga: f(H)),
                        *((f"wmmse_{k}", lambda H=H, f=f: f(H)) for k, f in ladder.items()),
                    )
                }  # the beams of the timed calls are scored: no extra call (WMMSE's takes a minute at batch 4096)
                t = {name: sec for name, (sec, _) in timed.items()}
                sr = {name: float(np.mean(jb.sum_rate(H, W, cfg.sigma2))) for name, (_, W) in timed.items()}
                reach = [k for k in LADDER if sr[f"wmmse_{k}"] >= sr["sao"]]
                m = f"wmmse_{reach[0]}" if reach else "wmmse"  # the cheapest WMMSE at >= the model's quality
                rec = {"K": K, "N": N, "batch": B, "Q_i": q, **{f"{k}_s": v for k, v in t.items()}, **sr}
                rec["matched"] = m
                records.append(rec)
                pct = {k: f"{100 * sr[k] / sr['wmmse']:.1f}" for k in ("sao", "ga", "rzf", m)}
                rows.append(
                    [f"({K}, {N})", B, q, *(f"{B / t[k]:,.0f}" for k in ("sao", "wmmse", "ga", "rzf"))]
                    + [m.replace("wmmse_", "WMMSE-"), f"{B / t[m]:,.0f}", f"{t[m] / t['sao']:.2f}"]
                    + [pct["sao"], pct[m], pct["ga"], pct["rzf"]]
                )
                print(" | ".join(str(c) for c in rows[-1]), flush=True)
    header = ["(K, N)", "batch", "Q_i", "SAO [samples/s]", "WMMSE [samples/s]", "GA T Q_i [samples/s]"]
    header += ["RZF [samples/s]", "cheapest WMMSE at >= SAO", "its samples/s", "SAO speed / it"]
    header += ["SAO % of WMMSE", "it %", "GA % of WMMSE", "RZF % of WMMSE"]
    print()
    print(markdown_table(header, rows))
    meta = {"jax": jax.__version__, "backend": jax.default_backend(), "device": jax.devices()[0].device_kind}
    meta |= {"machine": platform.processor(), "untrained": args.untrained}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "config": cfg.to_dict(), "results": records}, indent=1, default=str))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
