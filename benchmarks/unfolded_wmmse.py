"""The deep-unfolded WMMSE against WMMSE at every iteration count: ``python -m benchmarks.unfolded_wmmse``.

For each ``--iterations`` T (default 3 and 5) the ``cpu`` preset's model (trained into ``RUNS/unfolded_cpu_T<T>``
if missing, or resumed; ``jaxbeam pretrain --model unfolded --set iterations=T`` trains the same) is scored on
channels from ``--seed`` (never used in training or to choose a design):

* the systems it trained on, (12, 12), (16, 16), (16, 12), (12, 8) at 20 dB, and systems it did not: larger
  (24, 24), (20, 16) at 20 dB, the same (16, 16) at 10 and 30 dB, and BERT4beam's (6, 12), (8, 16) at 10 dB;
* its mean sum rate as % of converged WMMSE's (``tol=1e-5``) on the same channels, with the 95 % confidence
  interval of the paired ratio; WMMSE with the same T iterations (the model untrained); RZF; and the smallest
  number of WMMSE iterations from RZF whose mean sum rate reaches the model's (counted one iteration at a time
  up to 200: "WMMSE iterations to match"). One unfolded iteration costs about one WMMSE iteration (speeds are
  measured side by side in ``benchmarks.frontier``).

Speed (``--batch``, default 4096, on the trained systems): each model and WMMSE-k for every k up to 20 are timed
round-robin, one call each per round for ``--rounds`` rounds (compile excluded), and each method's median is
reported, so slow drifts of a shared machine hit every method alike; beside each model, the fewest WMMSE
iterations that reach its quality and how much slower that WMMSE-k is.

Writes ``--out`` (``results/unfolded_wmmse.json``) and its ``.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np

import jaxbeam as jb
from benchmarks._results import header, markdown_header
from benchmarks.frontier import quality
from jaxbeam.configs import get_unfolded_preset
from jaxbeam.jobs.load import load_beamformer
from jaxbeam.jobs.report import markdown_table
from jaxbeam.jobs.unfolded import train_unfolded

P = 1.0
SYSTEMS = [(12, 12, 20.0), (16, 16, 20.0), (16, 12, 20.0), (12, 8, 20.0)]
UNSEEN = [(24, 24, 20.0), (20, 16, 20.0), (16, 16, 10.0), (16, 16, 30.0), (6, 12, 10.0), (8, 16, 10.0)]
MAX_ITER = 200


def wmmse_curve(H, sigma2: float, most: int = MAX_ITER) -> np.ndarray:
    """Per-sample sum rates ``(most + 1, B)`` of WMMSE after 0 (RZF), 1, .., ``most`` iterations (float64)."""
    step = jax.jit(lambda s: jb.wmmse_step(s, H, P, sigma2, tol=1e-30))
    beams = jax.jit(lambda s: jb.sum_rate(H, jb.wmmse_beams(s, H, sigma2), sigma2))
    s = jb.wmmse_init(H, P, sigma2)
    out = [np.asarray(beams(s), np.float64)]
    for _ in range(most):
        s = step(s)
        out.append(np.asarray(beams(s), np.float64))
    return np.stack(out)


def references(K: int, N: int, snr_db: float, samples: int, key):
    """The channels of a system and their references: ``(H, sigma2, best, curve)`` with ``best`` the per-sample
    max of converged WMMSE (tol 1e-5) and WMMSE after :data:`MAX_ITER` iterations, ``curve`` as
    :func:`wmmse_curve`."""
    sigma2 = P / 10 ** (snr_db / 10)
    H = jb.rayleigh(jax.random.fold_in(key, 1000 * K + N + int(snr_db)), (samples,), K, N)
    W = jax.jit(lambda H: jb.wmmse(H, P, sigma2, tol=1e-5))(H)
    curve = wmmse_curve(H, sigma2)
    return H, sigma2, np.maximum(np.asarray(jb.sum_rate(H, W, sigma2), np.float64), curve[-1]), curve


def score(bf, T: int, H, sigma2: float, best, curve) -> dict:
    """The model's quality on ``H`` beside WMMSE-T, RZF, the ladder and the WMMSE iterations that match it."""
    model = np.asarray(jb.sum_rate(H, jax.jit(lambda H: bf(H, P, sigma2))(H), sigma2), np.float64)
    q, ci = quality(model, best)
    reach = np.nonzero(curve.mean(axis=1) >= model.mean())[0]
    return {
        "T": T, "unfolded_pct": q, "ci95": ci, "wmmse_T_pct": quality(curve[T], best)[0],
        "rzf_pct": quality(curve[0], best)[0],
        "ladder_pct": {k: quality(curve[k], best)[0] for k in (1, 2, 3, 5, 10, 20, 50)},
        "iterations_to_match": int(reach[0]) if reach.size else None,
    }  # fmt: skip


def run(args) -> list[dict]:
    models = {}
    for T in args.iterations:
        workdir = args.runs / f"unfolded_cpu_T{T}"
        res = train_unfolded(get_unfolded_preset("cpu", iterations=T), workdir, progress=args.progress)
        hist = res.history[-1] if res.history else {}
        bf = load_beamformer(workdir)
        params = {k: [round(float(x), 3) for x in v] for k, v in bf.params.items()}
        models[T] = (bf, {"run": str(workdir), "params": params, "train_seconds": hist.get("train_seconds")})
    rows = []
    key = jax.random.key(args.seed)
    for K, N, snr in SYSTEMS + UNSEEN:
        refs = references(K, N, snr, args.samples, key)
        for T, (bf, info) in models.items():
            r = {"K": K, "N": N, "snr_db": snr, "samples": args.samples, "trained_on": (K, N, snr) in SYSTEMS}
            r.update(score(bf, T, *refs), **info)
            rows.append(r)
            if args.progress:
                print(f"T = {T} ({K}, {N}) {snr:g} dB: {r['unfolded_pct']:.2f} +- {r['ci95']:.2f} % (WMMSE-{T} "
                      f"{r['wmmse_T_pct']:.2f}); WMMSE needs {r['iterations_to_match']}", flush=True)  # fmt: skip
    speeds = speed(rows, models, args, key) if args.rounds > 0 else []
    return rows, speeds


def interleaved_speed(fns: dict, H, rounds: int) -> dict:
    """Median samples/s of each ``fn(H)`` (jitted here), timed round-robin over ``rounds`` rounds."""
    jitted = {name: jax.jit(fn) for name, fn in fns.items()}
    for f in jitted.values():
        jax.block_until_ready(f(H))  # compile
    times = {name: [] for name in jitted}
    for _ in range(rounds):
        for name, f in jitted.items():
            t0 = time.perf_counter()
            jax.block_until_ready(f(H))
            times[name].append(time.perf_counter() - t0)
    return {name: H.shape[0] / float(np.median(t)) for name, t in times.items()}


def speed(rows: list[dict], models: dict, args, key) -> list[dict]:
    """Per trained system: samples/s of each model and of WMMSE-k (k = 1..20), interleaved; each model's row gets
    the speed of the fewest WMMSE iterations that reach its quality (``iterations_to_match``)."""
    out = []
    for K, N, snr in SYSTEMS:
        sigma2 = P / 10 ** (snr / 10)
        H = jb.rayleigh(jax.random.fold_in(key, 7 + K * N), (args.batch,), K, N)
        fns = {f"unfolded-{T}": (lambda H, bf=bf, s2=sigma2: bf(H, P, s2)) for T, (bf, _) in models.items()}
        fns.update({f"WMMSE-{k}": (lambda H, k=k, s2=sigma2: jb.wmmse_fixed(H, P, s2, k)) for k in range(1, 21)})
        sps = interleaved_speed(fns, H, args.rounds)
        rec = {"K": K, "N": N, "snr_db": snr, "batch": args.batch, "rounds": args.rounds, "samples_per_s": sps}
        for r in rows:
            if (r["K"], r["N"], r["snr_db"]) == (K, N, snr):
                k = r["iterations_to_match"]
                mine = sps[f"unfolded-{r['T']}"]
                r["samples_per_s"] = mine
                r["matched_samples_per_s"] = None if k is None or k > 20 or k == 0 else sps[f"WMMSE-{k}"]
                r["speedup_over_match"] = (
                    None if r["matched_samples_per_s"] is None else mine / r["matched_samples_per_s"]
                )
        out.append(rec)
        if args.progress:
            print(f"({K}, {N}) speed: " + ", ".join(f"{n} {v:,.0f}/s" for n, v in sps.items()), flush=True)
    return out


def _speed_of(speeds: list[dict], row: dict) -> dict:
    return next(s for s in speeds if (s["K"], s["N"]) == (row["K"], row["N"]))["samples_per_s"]


def render(head: dict, rows: list[dict], speeds: list[dict]) -> str:
    out = [markdown_header("Deep-unfolded WMMSE against WMMSE at every iteration count", head)]
    out.append(
        f"{rows[0]['samples']} fresh Rayleigh channels per system, P = {P:g} W; % of the per-sample best of converged "
        f"WMMSE (tol 1e-5) and WMMSE after {MAX_ITER} iterations; +- the 95 % interval of the paired ratio. 'WMMSE "
        "iterations to match': the fewest WMMSE iterations from RZF whose mean sum rate reaches the model's (one "
        "unfolded iteration costs about one WMMSE iteration; speeds side by side in results/frontier.md). Trained "
        "on the systems marked 'yes' only (one model per T for all of them), label-free, on the cpu preset.\n"
    )
    for T in dict.fromkeys(r["T"] for r in rows):
        sub = [r for r in rows if r["T"] == T]
        secs = sub[0]["train_seconds"]
        out.append(f"## T = {T} iterations (training: {secs:.0f} s of steps on this machine)\n" if secs else
                   f"## T = {T} iterations\n")  # fmt: skip
        body = [
            [f"({r['K']}, {r['N']})", f"{r['snr_db']:g}", "yes" if r["trained_on"] else "no",
             f"{r['unfolded_pct']:.2f} +- {r['ci95']:.2f}", f"{r['wmmse_T_pct']:.2f}", f"{r['rzf_pct']:.2f}",
             f"{r['ladder_pct'][10]:.2f}", f"{r['ladder_pct'][20]:.2f}",
             "> 200" if r["iterations_to_match"] is None else r["iterations_to_match"]]
            for r in sub
        ]  # fmt: skip
        hdr = ["(K, N)", "SNR [dB]", "trained on", f"unfolded-{T} %", f"WMMSE-{T} %", "RZF %", "WMMSE-10 %",
               "WMMSE-20 %", "WMMSE iterations to match"]  # fmt: skip
        out.append(markdown_table(hdr, body) + "\n")
        timed = [r for r in sub if "samples_per_s" in r]
        if timed:
            b = speeds[0]["batch"]
            body = [
                [f"({r['K']}, {r['N']})", f"{r['samples_per_s']:,.0f}",
                 "none <= 20" if r["matched_samples_per_s"] is None else
                 f"WMMSE-{r['iterations_to_match']}: {r['matched_samples_per_s']:,.0f}",
                 "-" if r["speedup_over_match"] is None else f"{r['speedup_over_match']:.2f}x",
                 f"{_speed_of(speeds, r)[f'WMMSE-{T}']:,.0f}"]
                for r in timed
            ]  # fmt: skip
            hdr = ["(K, N)", f"unfolded-{T} [samples/s]", "WMMSE at its quality [samples/s]", "speed-up",
                   f"WMMSE-{T} [samples/s]"]  # fmt: skip
            out.append(f"Speed at batch {b} (jitted, compile excluded, medians of {speeds[0]['rounds']} interleaved "
                       "rounds):\n")  # fmt: skip
            out.append(markdown_table(hdr, body) + "\n")
        out.append("Learned parameters (per iteration): " + "; ".join(
            f"{k} = {v}" for k, v in sub[0]["params"].items()) + "\n")  # fmt: skip
    return "\n".join(out)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iterations", default="3,5", help="T of each model, comma-separated (default 3,5)")
    p.add_argument("--runs", type=Path, default=Path("runs"), help="where the models are (trained if missing)")
    p.add_argument("--samples", type=int, default=1000, help="channels per system (default 1000)")
    p.add_argument("--seed", type=int, default=20261207, help="channel seed (one no design was chosen on)")
    p.add_argument("--out", type=Path, default=Path("results/unfolded_wmmse.json"))
    p.add_argument("--batch", type=int, default=4096, help="batch of the speed measurement (default 4096)")
    p.add_argument("--rounds", type=int, default=9, help="interleaved timing rounds (default 9; 0: no timing)")
    p.add_argument("--quiet", dest="progress", action="store_false")
    args = p.parse_args(argv)
    try:
        args.iterations = sorted({int(t) for t in args.iterations.split(",")})
    except ValueError:
        p.error(f"--iterations must be comma-separated positive ints; got {args.iterations!r}")
    if min(args.iterations) < 1 or args.samples < 2:
        p.error(f"--iterations must be >= 1 and --samples >= 2; got {args.iterations}, {args.samples}")
    rows, speeds = run(args)
    head = header("benchmarks.unfolded_wmmse", argv)
    md = render(head, rows, speeds)
    print(md)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"header": head, "rows": rows, "speed": speeds}, indent=1))
    args.out.with_suffix(".md").write_text(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
