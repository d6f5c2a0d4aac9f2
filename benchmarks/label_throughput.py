"""Label-solver throughput: ``python -m benchmarks.label_throughput [--smoke]``.

Samples/s of the batched, jitted ``jb.wmmse`` (default per-user-rate stop, and the paper's one-iteration
rule ``stop="paper"``), ``jb.sca`` (SR, MR, EE) and ``jb.maxmin_exact`` (default normalised fixed point,
and ``method="bisection"``; on the first ``--exact-batch`` channels) at (K, N) = (6, 12) and
(8, 16), batch 4096, against the straightforward per-sample numpy WMMSE of
:mod:`benchmarks.numpy_wmmse` (what a user would otherwise run) on the same channels with the same
tolerance: the speed ratio and the utilities side by side, the compile time of each jitted solver
(``jit(f).lower(H).compile()``, reported apart from run time), and WMMSE throughput against batch size.
The numpy solver runs on the first ``--numpy-samples`` channels of the batch (its per-sample rate does
not depend on the batch) and both utilities are reported on that subset. Writes a JSON file.

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
from benchmarks.numpy_wmmse import wmmse_numpy
from jaxbeam.jobs.report import markdown_table

SIGMA2, PC, P = 0.1, 0.5, 1.0


def solvers(tol):
    return {
        "wmmse": lambda H: jb.wmmse(H, P, SIGMA2, tol=tol),
        "wmmse-paper": lambda H: jb.wmmse(H, P, SIGMA2, tol=tol, stop="paper"),
        "sca-sr": lambda H: jb.sca(H, P, SIGMA2, "sr", PC, tol),
        "sca-mr": lambda H: jb.sca(H, P, SIGMA2, "mr", PC, tol),
        "sca-ee": lambda H: jb.sca(H, P, SIGMA2, "ee", PC, tol),
        "exact-mr": lambda H: jb.maxmin_exact(H, P, SIGMA2),
        "exact-mr-bisection": lambda H: jb.maxmin_exact(H, P, SIGMA2, method="bisection"),
    }


def _task(name):
    return "sr" if name.startswith(("wmmse", "sca-sr")) else name.split("-")[1]


def time_jitted(fn, H, repeats):
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(H).compile()
    compile_s = time.perf_counter() - t0
    W = jax.block_until_ready(compiled(H))  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        W = jax.block_until_ready(compiled(H))
        times.append(time.perf_counter() - t0)
    return W, compile_s, float(np.median(times))


def run(sizes, batch, numpy_samples, scaling_batches, tol, repeats, seed=0, log=print, exact_batch=1024):
    rows = []
    for K, N in sizes:
        H = jb.rayleigh(jax.random.fold_in(jax.random.key(seed), 100 * K + N), (batch,), K, N)
        Hs = np.asarray(H[:numpy_samples], np.complex128)
        log(f"  numpy WMMSE on {numpy_samples} channels at ({K}, {N}) ...")
        for h in Hs[:4]:  # warm-up (first LAPACK calls)
            wmmse_numpy(h, P, SIGMA2, tol=tol)
        np_times = []
        for _ in range(repeats):  # median of passes, as for the jitted solvers
            t0 = time.perf_counter()
            ref = [wmmse_numpy(h, P, SIGMA2, tol=tol) for h in Hs]
            np_times.append(time.perf_counter() - t0)
        np_s = float(np.median(np_times))
        np_rate = numpy_samples / np_s
        np_sr = float(np.mean([r[1] for r in ref]))
        np_iters = float(np.mean([r[2] for r in ref]))
        for name, fn in solvers(tol).items():
            Hb = H[: min(exact_batch, batch)] if name.startswith("exact") else H
            b = Hb.shape[0]
            log(f"  {name} at ({K}, {N}), batch {b} ...")
            W, compile_s, run_s = time_jitted(fn, Hb, repeats)
            task = _task(name)
            U = np.asarray(jb.utility(task, Hb, W, SIGMA2, PC))
            Wn = np.stack([r[0] for r in ref]).astype(np.complex64)
            U_np = np.asarray(jb.utility(task, Hs.astype(np.complex64), Wn, SIGMA2, PC))
            rate = b / run_s
            rows.append(
                dict(
                    K=K, N=N, solver=name, utility=task, batch=b, compile_s=compile_s, run_s=run_s,
                    samples_per_s=rate, numpy_samples_per_s=np_rate, speedup_vs_numpy=rate / np_rate,
                    mean_utility=float(U.mean()), mean_utility_subset=float(U[:numpy_samples].mean()),
                    numpy_wmmse_mean_utility_subset=float(U_np.mean()), numpy_wmmse_sr_float64=np_sr,
                    numpy_iterations=np_iters,
                    max_power=float(np.max(np.asarray(jb.transmit_power(W)))),
                )
            )  # fmt: skip
    scaling = []
    K, N = sizes[-1]
    for b in scaling_batches:
        H = jb.rayleigh(jax.random.key(seed + 1), (b,), K, N)
        log(f"  wmmse scaling, batch {b} ...")
        _, compile_s, run_s = time_jitted(solvers(tol)["wmmse"], H, repeats)
        scaling.append(dict(K=K, N=N, batch=b, compile_s=compile_s, run_s=run_s, samples_per_s=b / run_s))
    return rows, scaling


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="tiny sizes that run in seconds")
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--numpy-samples", type=int, default=256, help="channels solved by the numpy WMMSE")
    p.add_argument("--scaling-batches", type=int, nargs="+", default=[256, 1024, 4096])
    p.add_argument("--tol", type=float, default=1e-4)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--exact-batch", type=int, default=1024, help="batch of the exact max-min solvers")
    p.add_argument("--out", default="results/label_throughput.json")
    args = p.parse_args(argv)
    sizes = [(6, 12), (8, 16)]
    if args.smoke:
        sizes, args.batch, args.numpy_samples, args.scaling_batches, args.repeats = [(4, 8)], 64, 8, [16, 64], 1
    sizing = (args.batch, args.numpy_samples, args.scaling_batches)
    rows, scaling = run(sizes, *sizing, args.tol, args.repeats, exact_batch=args.exact_batch)
    header = ["(K, N)", "solver", "batch", "samples/s", "numpy samples/s", "speed-up", "compile s"]
    header += ["U (subset)", "numpy WMMSE U (subset)", "U (batch)"]
    table = [
        [f"({r['K']}, {r['N']})", r["solver"], r["batch"], f"{r['samples_per_s']:.0f}",
         f"{r['numpy_samples_per_s']:.0f}", f"{r['speedup_vs_numpy']:.1f}x", f"{r['compile_s']:.1f}",
         f"{r['mean_utility_subset']:.4f}",
         f"{r['numpy_wmmse_mean_utility_subset']:.4f}", f"{r['mean_utility']:.4f}"]
        for r in rows
    ]  # fmt: skip
    env = dict(
        jax=jax.__version__, backend=jax.default_backend(), device_kind=jax.devices()[0].device_kind,
        device_count=jax.device_count(), cpu=platform.processor() or platform.machine(), dtype="complex64",
        sigma2=SIGMA2, P=P, Pc=PC, tol=args.tol,
    )  # fmt: skip
    print(f"Label throughput on {env['device_kind']} x{env['device_count']}, jax {env['jax']}, tol {args.tol}, P = {P}")
    print(
        "(U: SR for wmmse/sca-sr, MR for sca-mr/exact-mr, EE for sca-ee; "
        "the numpy column is the same utility of the numpy WMMSE beams)\n"
    )
    print(markdown_table(header, table))
    print("\nWMMSE throughput vs batch:")
    print(markdown_table(["(K, N)", "batch", "samples/s", "compile s"],
                         [[f"({s['K']}, {s['N']})", s["batch"], f"{s['samples_per_s']:.0f}", f"{s['compile_s']:.1f}"]
                          for s in scaling]))  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"environment": env, "rows": rows, "scaling": scaling}, indent=2))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
