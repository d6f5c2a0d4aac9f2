"""The speed-quality frontier of every method, learned and classical: ``python -m benchmarks.frontier``.

On the same fresh channels, batch and machine, in one run, each method's quality against its throughput:

* quality: its mean utility as % of the mean per-sample best of the reference solvers (eq. 31), with a 95 %
  confidence interval of that paired ratio (delta method); ``--samples`` i.i.d. Rayleigh channels drawn
  from ``--seed`` (a seed no design choice was made on);
* throughput: samples/s of one jitted call at each batch of ``--batches`` (default 100 and 4096; compile
  excluded, ``block_until_ready``), the median of ``--rounds`` rounds in which every method of the panel is called
  once, in a new random order each round, so a slow drift of a shared machine hits all alike; latency: one
  sample, median over ``--repeats`` interleaved calls;
* the frontier: a method is on it when no other is at least as good and at least as fast (at the largest
  batch) and better in one. The solvers run to convergence (WMMSE, SCA) are timed at the smallest batch only
  (converged WMMSE takes minutes per call at (16, 16) x 4096 on a CPU); at the largest batch they count as not
  measured, so they never dominate there.

Systems (P = 1 W): BERT4beam's (6, 12) and (8, 16) at 10 dB (SR, MR, EE), and (12, 12), (16, 16), (16, 12), (12, 8)
at 20 dB (SR), where RZF is far from WMMSE. The classical ladder on every panel: MRT, ZF (K <= N), RZF, RZF_BAL
(closed forms); SR: WMMSE-k (:func:`jaxbeam.wmmse_fixed`, k in 1, 2, 3, 5, 10, 20, 50 from RZF; at 20 dB every k
up to 8 and 10, 12, 15, 20, 30, 50: :data:`DENSE_BUDGETS`) and WMMSE to
convergence (``tol=1e-5``, reference); MR: the exact max-min optimum (reference); EE: the power search on RZF's
and ZF's directions (:func:`jaxbeam.power_search`, 13 levels 1.5 dB apart, each level with its own RZF), the
continuous power search on the fixed full-power RZF and ZF directions (:func:`jaxbeam.ee_scale`: 24 golden-section
steps on the gains computed once), RZF at its EE-best power by alternating power and regulariser
(:func:`jaxbeam.rzf_ee`, 2 and 3 passes) and SCA; the references are SCA and every power search. Learned models:
the ``cpu`` models of the experiment cache (``--runs``; BERT per utility and UBERT at (6, 12) and (8, 16)),
MT-SAO runs (``--sao RUN``) and deep-unfolded WMMSE runs (``--unfolded RUN``), any number, loaded with
:func:`jaxbeam.jobs.load.load_beamformer`. Each learned
row names the cheapest classical method that reaches at least its quality (``matched_by``) and how much faster
that method is (``speedup``; < 1: the model is faster).

Writes ``--out`` (``results/frontier.json``: a header, then one record per (system, utility, method) with ``K``,
``N``, ``snr_db``, ``utility``, ``method``, ``learned``, ``quality_pct``, ``ci95``, ``samples_per_s`` (by batch),
``latency_ms``, ``on_frontier``, ``device``, ``commit``), ``.md`` and ``.png`` beside it (one panel per system
and utility, quality against throughput, log axis). ``--quick`` (CI): one small system, few channels, two budgets,
one batch, no models: a check that it runs and writes its files, not a measurement.

Wall-clock on a possibly shared machine: compare throughputs within one run only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import jax
import numpy as np

import jaxbeam as jb
from benchmarks._results import header, markdown_header
from jaxbeam.core.precoders import linear_beams
from jaxbeam.jobs.report import markdown_table

P, PC = 1.0, 0.5
SYSTEMS = ((6, 12, 10.0, ("sr", "mr", "ee")), (8, 16, 10.0, ("sr", "mr", "ee")))
SYSTEMS += tuple((K, N, 20.0, ("sr",)) for K, N in ((12, 12), (16, 16), (16, 12), (12, 8)))
QUICK_SYSTEMS = ((3, 4, 10.0, ("sr", "mr", "ee")),)
BUDGETS = (1, 2, 3, 5, 10, 20, 50)
DENSE_BUDGETS = (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20, 30, 50)
"""The ladder on the 20 dB panels, where learned WMMSE variants compete: every budget up to 8 and a few above, so
a learned method is never credited with a gap between two budgets."""
QUICK_BUDGETS = (1, 5)
SLOW = {"WMMSE (converged)", "SCA"}
"""Timed at the smallest batch only."""
MAKE = "python -m experiments.fig3_pretraining --preset cpu makes it, or pass --train-missing"


def classical(utility: str, K: int, N: int, sigma2: float, budgets=BUDGETS) -> tuple[dict, set]:
    """``({name: fn(H) -> W}, reference names)`` of the classical methods of a panel."""
    out = {
        n.upper(): (lambda H, n=n: linear_beams(n, H, P, sigma2))
        for n in ("mrt", "zf", "rzf", "rzf_bal")
        if not (n == "zf" and K > N)
    }
    if utility == "sr":
        out.update({f"WMMSE-{k}": (lambda H, k=k: jb.wmmse_fixed(H, P, sigma2, k)) for k in budgets})
        out["WMMSE (converged)"] = lambda H: jb.wmmse(H, P, sigma2, tol=1e-5)
        return out, {"WMMSE (converged)", *(f"WMMSE-{k}" for k in budgets)}
    if utility == "mr":
        out["max-min optimum"] = lambda H: jb.maxmin_exact(H, P, sigma2)
        return out, {"max-min optimum"}
    for d in ("rzf", "zf"):
        if not (d == "zf" and K > N):
            out[f"{d.upper()} power search"] = lambda H, d=d: jb.power_search(H, P, sigma2, PC, direction=d)
            out[f"{d.upper()} + EE scale"] = lambda H, d=d: jb.ee_scale(H, linear_beams(d, H, P, sigma2), sigma2, PC)
    for m in (2, 3):
        out[f"RZF EE, {m} passes"] = lambda H, m=m: jb.rzf_ee(H, P, sigma2, PC, passes=m)
    out["SCA"] = lambda H: jb.sca(H, P, sigma2, "ee", PC)
    return out, {"SCA", *(n for n in out if n.endswith(("power search", "EE scale", "passes")))}


def _once(f, x) -> float:
    t0 = time.perf_counter()
    jax.block_until_ready(f(x))
    return time.perf_counter() - t0


def measure_panel(fns: dict, H, utility: str, sigma2: float, batches, rounds: int, repeats: int, key) -> dict:
    """``{name: {"u", "samples_per_s", "latency_ms"}}`` of the jitted ``fns`` (``H -> W``) of one panel: utilities
    per sample on ``H``; samples/s at each batch size (fresh channels of ``H``'s shape; the methods of
    :data:`SLOW` at the smallest batch only) as the median of ``rounds`` rounds in which every method is called
    once, in a new random order each round (so a slow drift of a shared machine, or the cost of running right
    after a memory-hungry method, hits every method alike); and the one-sample latency [ms],
    the median of ``repeats`` interleaved calls. Compilation excluded."""
    jitted = {name: jax.jit(fn) for name, fn in fns.items()}
    out = {name: {"u": np.asarray(jb.utility(utility, H, f(H), sigma2, PC), np.float64), "samples_per_s": {}}
           for name, f in jitted.items()}  # fmt: skip
    K, N = H.shape[-2:]
    for i, b in enumerate(batches):
        Hb = jb.rayleigh(jax.random.fold_in(key, b), (b,), K, N)
        here = {n: f for n, f in jitted.items() if i == 0 or n not in SLOW}
        for f in here.values():
            jax.block_until_ready(f(Hb))  # compile
        times = {n: [] for n in here}
        rng = np.random.default_rng(b)
        for _ in range(rounds):  # a new order each round: no method always follows the same (e.g. a large) one
            for n in rng.permutation(list(here)):
                times[n].append(_once(here[n], Hb))
        for n, t in times.items():
            out[n]["samples_per_s"][str(b)] = b / statistics.median(t)
    one = jb.rayleigh(jax.random.fold_in(key, 1), (repeats, 1), K, N)
    lat = {n: [] for n in jitted}
    for f in jitted.values():
        jax.block_until_ready(f(one[0]))
    for i in range(repeats):
        for n, f in jitted.items():
            lat[n].append(_once(f, one[i]))
    for n, t in lat.items():
        out[n]["latency_ms"] = 1e3 * statistics.median(t)
    return out


def quality(u: np.ndarray, best: np.ndarray) -> tuple[float, float]:
    """``100 mean(u) / mean(best)`` and the half-width of its 95 % confidence interval (delta method on the
    paired ratio of means: ``var = var(u - R best) / (n mean(best)^2)``)."""
    n, mb = len(u), float(np.mean(best))
    R = float(np.mean(u)) / mb
    se = float(np.std(u - R * best, ddof=1)) / (np.sqrt(n) * mb) if n > 1 else float("nan")
    return 100.0 * R, 100.0 * 1.96 * se


def mark_frontier(rows: list[dict], batch: str) -> None:
    """``on_frontier``: no other row is at least as good and at least as fast at ``batch``, and better in one."""
    speed = lambda r: r["samples_per_s"].get(batch, 0.0)  # not measured there: dominates nothing
    for r in rows:
        q, s = r["quality_pct"], speed(r)
        r["on_frontier"] = not any(
            o is not r and o["quality_pct"] >= q and speed(o) >= s and (o["quality_pct"] > q or speed(o) > s)
            for o in rows
        )


def match(rows: list[dict], batch: str) -> None:
    """Each learned row's ``matched_by``: the fastest classical row with at least its quality, and ``speedup``:
    that row's samples/s over the model's (at ``batch``; at ``speedup_batch`` where the match was only timed
    there)."""
    for r in rows:
        if not r["learned"]:
            continue
        better = [o for o in rows if not o["learned"] and o["quality_pct"] >= r["quality_pct"]]
        best = max(better, key=lambda o: o["samples_per_s"].get(batch, 0.0), default=None)
        r["matched_by"] = None if best is None else best["method"]
        r["speedup"] = r["speedup_batch"] = None
        if best is not None:  # at the largest batch, or where the match was timed only (SLOW) at its batch
            b = batch if batch in best["samples_per_s"] else next(iter(best["samples_per_s"]))
            r["speedup"], r["speedup_batch"] = best["samples_per_s"][b] / r["samples_per_s"][b], b


def learned_methods(args, utility: str, K: int, N: int, sigma2: float, notes: list[str]) -> dict:
    """``{name: fn(H) -> W}`` of the trained models that serve this panel."""
    from jaxbeam.jobs.load import load_beamformer

    out = {}
    for run in args.sao:
        bf = load_beamformer(run)
        if utility == bf.utility and K <= bf.K and N <= bf.N:  # MT-SAO takes any sigma2 (its gradient steps)
            out[f"MT-SAO ({Path(run).name})"] = lambda H, bf=bf: bf(H, P, sigma2)
    for run in args.unfolded:
        bf = load_beamformer(run)
        if utility == bf.utility:  # any K, N and sigma2 (WMMSE's iterations)
            T = len(bf.params["gamma"])
            name = Path(run).parent.name if Path(run).name == "model" else Path(run).name
            out[f"unfolded WMMSE-{T} ({name})"] = lambda H, bf=bf: bf(H, P, sigma2)
    if args.runs is None or (K, N) not in ((6, 12), (8, 16)) or abs(sigma2 - 0.1) > 1e-12:
        return out  # the cpu BERT / UBERT models exist at BERT4beam's systems, 10 dB
    from experiments.context import Context  # the experiment cache; benchmarks stand above experiments

    ctx = Context("cpu", args.runs, progress=args.train_missing)
    if args.train_missing:
        ctx.pretrained("bert", utility, K, N)
        ctx.pretrained_ubert(K, N)
    for name, run, task in (("BERT", ctx.pretrained_dir("bert", utility, K, N), None),
                            ("UBERT", ctx.ubert_dir(K, N), utility)):  # fmt: skip
        if run.exists():
            bf = load_beamformer(run, task=task)
            out[name] = lambda H, bf=bf: bf(H, P)
        else:
            notes.append(f"{name} ({utility.upper()}) at ({K}, {N}) is not in {args.runs}: skipped ({MAKE})")
    return out


def run(args) -> list[dict]:
    rows, notes = [], []
    key = jax.random.key(args.seed)
    for K, N, snr_db, utilities in QUICK_SYSTEMS if args.quick else SYSTEMS:
        sigma2 = P / 10 ** (snr_db / 10)
        H = jb.rayleigh(jax.random.fold_in(key, 1000 * K + N), (args.samples,), K, N)
        for utility in utilities:
            if utility not in args.utilities:
                continue
            budgets = QUICK_BUDGETS if args.quick else DENSE_BUDGETS if snr_db >= 20 else BUDGETS
            methods, refs = classical(utility, K, N, sigma2, budgets)
            learned = learned_methods(args, utility, K, N, sigma2, notes)
            fns = {**methods, **learned}
            measured = measure_panel(fns, H, utility, sigma2, args.batches, args.rounds, args.repeats, key)
            if args.progress:
                for name, m in measured.items():
                    speeds = ", ".join(f"{v:,.0f}/s at {b}" for b, v in m["samples_per_s"].items())
                    print(f"  ({K}, {N}) {snr_db:g} dB {utility.upper()} {name}: {speeds}", flush=True)
            best = np.max([measured[n]["u"] for n in refs], axis=0)
            panel = []
            for name, m in measured.items():
                q, ci = quality(m.pop("u"), best)
                panel.append({"K": K, "N": N, "snr_db": snr_db, "utility": utility, "method": name,
                              "learned": name in learned, "quality_pct": q, "ci95": ci, **m})  # fmt: skip
            top = str(max(args.batches))
            mark_frontier(panel, top)
            match(panel, top)
            rows += sorted(panel, key=lambda r: -r["samples_per_s"].get(top, r["samples_per_s"][str(args.batches[0])]))
    for n in notes:
        print(n)
    return rows


def plot(rows: list[dict], path: Path, batch: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = list(dict.fromkeys((r["K"], r["N"], r["snr_db"], r["utility"]) for r in rows))
    cols = 3
    nrows = -(-len(panels) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(5.2 * cols, 4 * nrows), squeeze=False)
    for ax, (K, N, snr, u) in zip(axes.flat, panels, strict=False):
        panel = [r for r in rows if (r["K"], r["N"], r["snr_db"], r["utility"]) == (K, N, snr, u)]
        for r in panel:
            color = "C1" if r["learned"] else ("C3" if r["on_frontier"] else "C0")
            x = r["samples_per_s"].get(batch)
            if x is None:
                continue  # timed at the smallest batch only (SLOW)
            ax.errorbar(x, r["quality_pct"], yerr=r["ci95"], fmt="o", ms=4, c=color)
            ax.annotate(r["method"], (x, r["quality_pct"]), fontsize=6, xytext=(3, 2), textcoords="offset points")
        front = sorted((r for r in panel if r["on_frontier"] and batch in r["samples_per_s"]),
                       key=lambda r: r["samples_per_s"][batch])  # fmt: skip
        ax.plot([r["samples_per_s"][batch] for r in front], [r["quality_pct"] for r in front], "C3--", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel(f"samples/s (batch {batch}, jitted)")
        ax.set_ylabel(f"{u.upper()} [% of the best reference]")
        ax.set_title(f"({K}, {N}), {snr:g} dB, {u.upper()}")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle("red: on the frontier, orange: learned, blue: classical", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)  # a small file: results/ is committed
    plt.close(fig)


def render(head: dict, rows: list[dict], args) -> str:
    batches = [str(b) for b in args.batches]
    out = [markdown_header("The speed-quality frontier", head)]
    out.append(f"{args.samples} fresh Rayleigh channels per system (seed {args.seed}), P = {P:g} W, Pc = {PC:g} W. "
               "Quality: % of the mean per-sample best of the reference solvers, +- the 95 % confidence interval of "
               f"the paired ratio. Frontier at batch {batches[-1]}.\n")  # fmt: skip
    for K, N, snr, u in dict.fromkeys((r["K"], r["N"], r["snr_db"], r["utility"]) for r in rows):
        panel = [r for r in rows if (r["K"], r["N"], r["snr_db"], r["utility"]) == (K, N, snr, u)]
        out.append(f"## ({K}, {N}), {snr:g} dB, {u.upper()}\n")
        table = [
            [r["method"] + (" (learned)" if r["learned"] else ""), f"{r['quality_pct']:.2f} +- {r['ci95']:.2f}",
             *(f"{r['samples_per_s'][b]:,.0f}" if b in r["samples_per_s"] else "-" for b in batches),
             f"{r['latency_ms']:.2f}",
             "yes" if r["on_frontier"] else "",
             (f"{r['matched_by']} ({r['speedup']:.1f}x at {r['speedup_batch']})" if r.get("matched_by")
              else "none reaches it")
             if r["learned"] else ""]
            for r in panel
        ]  # fmt: skip
        hdr = ["method", "quality %", *(f"samples/s @{b}" for b in batches), "latency ms", "frontier",
               "cheapest classical at >= its quality"]  # fmt: skip
        out.append(markdown_table(hdr, table) + "\n")
    return "\n".join(out)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=1000, help="channels per system for the quality (default 1000)")
    p.add_argument("--batches", default="100,4096", help="batch sizes timed, comma-separated (default 100,4096)")
    p.add_argument("--repeats", type=int, default=20, help="one-sample calls timed for the latency")
    p.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds per batch size (default 7)")
    p.add_argument("--runs", type=Path, default=Path("runs/experiments/cpu"), help="experiment cache of cpu models")
    p.add_argument("--no-models", dest="runs", action="store_const", const=None, help="no cached BERT / UBERT")
    p.add_argument("--train-missing", action="store_true", help="train cpu models missing from --runs")
    p.add_argument("--sao", type=Path, action="append", default=[], help="an MT-SAO run directory (repeatable)")
    p.add_argument(
        "--unfolded",
        type=Path,
        action="append",
        default=[],
        help="a deep-unfolded WMMSE run directory (repeatable; jaxbeam pretrain --model unfolded)",
    )
    p.add_argument("--utilities", default="sr,mr,ee", help="the panels' utilities, comma-separated (default all)")
    p.add_argument("--seed", type=int, default=20261206, help="channel seed (one no design was chosen on)")
    p.add_argument("--out", type=Path, default=Path("results/frontier.json"))
    p.add_argument("--quiet", dest="progress", action="store_false")
    p.add_argument("--quick", action="store_true", help="one small system, 32 channels, no models (CI check)")
    args = p.parse_args(argv)
    try:
        args.batches = sorted({int(b) for b in args.batches.split(",")})
    except ValueError:
        p.error(f"--batches must be comma-separated positive ints; got {args.batches!r}")
    args.utilities = tuple(u.strip() for u in args.utilities.split(","))
    if any(u not in jb.TASKS for u in args.utilities):
        p.error(f"--utilities must be a comma-separated subset of {','.join(jb.TASKS)}; got {','.join(args.utilities)}")
    if args.quick:
        args.samples, args.repeats, args.runs, args.sao = min(args.samples, 32), 2, None, []
        args.rounds = 2
        args.unfolded = []
        args.batches = [args.samples]  # the quality's shapes: one compilation less per method
    if args.samples < 2 or args.repeats < 1 or args.rounds < 1 or min(args.batches) < 1:
        p.error(f"--samples must be >= 2, --repeats, --rounds and --batches >= 1; got {args.samples}, {args.repeats}, "
                f"{args.batches}")  # fmt: skip
    for flag, what, dirs in (("--sao", "an MT-SAO", args.sao), ("--unfolded", "an unfolded-WMMSE", args.unfolded)):
        for d in dirs:
            if not (d / "config.json").is_file():
                p.error(f"{flag} must be {what} run directory with a config.json; got {d}")
    t0 = time.perf_counter()
    rows = run(args)
    head = header("benchmarks.frontier", argv)
    for r in rows:
        r["device"], r["commit"] = head["device"], head["commit"]
    md = render(head, rows, args)
    print(md)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {**head, "samples": args.samples, "seed": args.seed, "batches": args.batches, "P": P, "Pc": PC}
    args.out.write_text(json.dumps({"header": meta, "rows": rows}, indent=1))
    args.out.with_suffix(".md").write_text(md)
    plot(rows, args.out.with_suffix(".png"), str(max(args.batches)))
    print(f"{time.perf_counter() - t0:.0f} s; wrote {args.out} and its .md and .png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
