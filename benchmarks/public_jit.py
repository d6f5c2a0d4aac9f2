"""Direct calls of the public API against the same calls under ``jax.jit``: ``python -m benchmarks.public_jit``.

For every public core and solver function, the median time of ``jb.f(H, ...)`` called the way README and
docs/design.md show it (concrete arrays, no ``jit`` of the user's own) and of ``jax.jit(lambda H: jb.f(H, ...))``
on the same inputs, both after a warm-up call (compilation is not timed), and their ratio (goal <= 1.2x).
Run it with ``PYTHONPATH`` at a checkout from before the public functions were compiled to see what a
direct call cost then. (K, N) = (6, 12), batch 1024; WMMSE also at (8, 16), batch 4096.

Timings are wall-clock on a possibly shared machine; compare the ratios measured within one run.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import jaxbeam as jb
from jaxbeam.jobs.report import markdown_table

SIGMA2, PC, P = 0.1, 0.5, 1.0


def cases(H, W):
    """name -> (function of the array inputs, inputs)."""
    u = jb.sum_rate(H, W, SIGMA2)
    return {
        "rzf": (lambda H: jb.rzf(H, P, SIGMA2), (H,)),
        "zf": (lambda H: jb.zf(H, P), (H,)),
        "mrt": (lambda H: jb.mrt(H, P), (H,)),
        "gpa": (lambda W: jb.gpa(W, P), (W,)),
        "project_power": (lambda W: jb.project_power(W, P), (W,)),
        "project_antenna_power": (lambda W: jb.project_antenna_power(W, P / W.shape[-1]), (W,)),
        "gpa_antenna": (lambda W: jb.gpa_antenna(W, P / W.shape[-1]), (W,)),
        "scale_antenna_power": (lambda W: jb.scale_antenna_power(W, P / W.shape[-1]), (W,)),
        "correlated": (lambda k: jb.correlated(k, (W.shape[0],), W.shape[-2], W.shape[-1]), (jax.random.key(2),)),
        "pathloss": (lambda k: jb.pathloss(k, (W.shape[0],), W.shape[-2], W.shape[-1]), (jax.random.key(3),)),
        "maxmin_power": (lambda H, W: jb.maxmin_power(H, W, P, SIGMA2), (H, W)),
        "sum_rate": (lambda H, W: jb.sum_rate(H, W, SIGMA2), (H, W)),
        "min_rate": (lambda H, W: jb.min_rate(H, W, SIGMA2), (H, W)),
        "energy_efficiency": (lambda H, W: jb.energy_efficiency(H, W, SIGMA2, PC), (H, W)),
        "performance": (lambda a, b: jb.performance(a, b), (u, u + 1.0)),
        "user_tokens": (lambda H: jb.user_tokens(H), (H,)),
        "antenna_tokens": (lambda H: jb.antenna_tokens(H), (H,)),
        "angle_domain": (lambda H: jb.angle_domain(H), (H,)),
        "spatial_domain": (lambda W: jb.spatial_domain(W), (W,)),
        "csi_error": (lambda H: jb.csi_error(jax.random.key(1), H, -20.0), (H,)),
        "refine(sr, 10)": (lambda H, W: jb.refine(H, W, P, SIGMA2, "sr", 10), (H, W)),
        "wmmse": (lambda H: jb.wmmse(H, P, SIGMA2), (H,)),
        "sca(sr)": (lambda H: jb.sca(H, P, SIGMA2, "sr"), (H,)),
        "sca(mr)": (lambda H: jb.sca(H, P, SIGMA2, "mr"), (H,)),
        "sca(ee)": (lambda H: jb.sca(H, P, SIGMA2, "ee", PC), (H,)),
        "maxmin_exact": (lambda H: jb.maxmin_exact(H, P, SIGMA2), (H,)),
        "wmmse_antenna": (lambda H: jb.wmmse_antenna(H, P / H.shape[-1], SIGMA2), (H,)),
    }


def median_time(fn, args, repeats):
    jax.block_until_ready(fn(*args))  # warm-up: compiles
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--only", nargs="*", help="names of the cases to run (default: all)")
    ap.add_argument("--out", default="runs/bench/public_jit.json")
    args = ap.parse_args(argv)

    rows, records = [], []
    setups = [((6, 12), args.batch, None), ((8, 16), 4 * args.batch, {"wmmse"})]
    for (K, N), B, names in setups:
        H = jb.rayleigh(jax.random.key(0), (B,), K, N)
        W = jax.block_until_ready(jax.jit(lambda H: jb.rzf(H, P, SIGMA2))(H))
        for name, (fn, inputs) in cases(H, W).items():
            if (names is not None and name not in names) or (args.only and name not in args.only):
                continue
            direct = median_time(fn, inputs, args.repeats)
            jitted = median_time(jax.jit(fn), inputs, args.repeats)
            rec = {"name": name, "K": K, "N": N, "batch": B, "direct_s": direct, "jit_s": jitted}
            row = [name, f"({K}, {N})", B, f"{B / direct:,.0f}", f"{B / jitted:,.0f}", f"{direct / jitted:.2f}"]
            records.append(rec)
            rows.append(row)
            print(" | ".join(str(c) for c in row), flush=True)
    header = ["function", "(K, N)", "batch", "direct [samples/s]", "under jit [samples/s]", "direct / jit"]
    print()
    print(markdown_table(header, rows))
    worst = max(r["direct_s"] / r["jit_s"] for r in records)
    print(f"\nworst direct/jit ratio: {worst:.2f} (goal <= 1.2)")
    machine = platform.processor() or platform.machine()
    meta = {"jax": jax.__version__, "backend": jax.default_backend(), "machine": machine}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "results": records}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    jnp.zeros(())  # initialise the backend before timing
    main()
