"""The speed-quality frontier: ``python -m benchmarks.frontier [--runs runs/experiments/cpu] [--sao RUN/model]``.

On the same channels, in one run, each method's quality (eq. 31: its mean utility as % of the mean of the
per-sample best of the iterative solvers) against its throughput (samples/s on ``--samples`` channels in
one jitted call, compile excluded) and latency (one sample, jitted, median over ``--repeats`` channels),
for SR, MR and EE at two systems:

* BERT4beam's (6, 12), P = 1 W, sigma2 = 0.1 W (10 dB), where RZF is near-optimal;
* K = N = 12, P = 1 W, sigma2 = 0.01 W (20 dB), where it is not (paper 002's regime).

Methods: MRT, ZF, RZF, RZF_BAL (closed forms, every utility); ``jb.wmmse`` at tolerances 1e-1 ... 1e-5
with its default stopping test and at 1e-4 with the paper's (SR; it always starts from RZF, so "several
starts" are these stopping rules); ``jb.sca`` (each utility, its default tolerance); ``jb.maxmin_exact``
(MR); at (6, 12) the ``cpu`` models found in the experiment cache (``--runs``: BERT and the baselines per
utility, UBERT with its task id; a model that is not there is skipped with the command that makes it, or
trained with ``--train-missing``, ~1.5 min per budget on 2 cores); at K = N, SR, a paper-002 model
(``--sao``, a ``jaxbeam pretrain --model sao_lift`` run). A method is on the frontier when no other one
is at least as good and at least as fast, and better in one. Prints a table per system and utility and
writes ``--out`` (JSON) and a PNG beside it (quality against samples/s, log scale).

``--smoke`` (CI) runs the whole benchmark at one small system, (3, 4) at 10 dB, on 16 channels, with two
WMMSE tolerances and no models: a check that it runs and writes its files, not a measurement.

Wall-clock on a possibly shared machine: compare throughputs within one run only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import jaxbeam as jb
from jaxbeam.core.precoders import LINEAR, linear_beams
from jaxbeam.jobs.builders import MODELS
from jaxbeam.jobs.report import markdown_table

SYSTEMS = (("bert4beam", 6, 12, 0.1), ("k_eq_n", 12, 12, 0.01))  # (name, K, N, sigma2) at P = 1 W
SMOKE_SYSTEMS = (("smoke", 3, 4, 0.1),)
P, PC = 1.0, 0.5
WMMSE_TOLS = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5)
SMOKE_TOLS = (1e-1, 1e-3)
MAKE = "python -m experiments.fig3_pretraining --preset cpu makes it, or pass --train-missing"


def solver_methods(utility: str, sigma2: float, tols: tuple[float, ...] = WMMSE_TOLS) -> dict:
    """``{name: fn(H) -> W}`` of the iterative solvers of ``utility`` (the per-sample best is the reference)."""
    if utility == "sr":
        out = {f"WMMSE tol {t:g}": (lambda H, t=t: jb.wmmse(H, P, sigma2, tol=t)) for t in tols}
        out["WMMSE tol 1e-4 (paper stop)"] = lambda H: jb.wmmse(H, P, sigma2, tol=1e-4, stop="paper")
        out["SCA"] = lambda H: jb.sca(H, P, sigma2, "sr", PC)
        return out
    if utility == "mr":
        return {
            "exact max-min": lambda H: jb.maxmin_exact(H, P, sigma2),
            "SCA": lambda H: jb.sca(H, P, sigma2, "mr", PC),
        }
    return {"SCA": lambda H: jb.sca(H, P, sigma2, "ee", PC)}


def closed_forms(K: int, N: int, sigma2: float) -> dict:
    names = [n for n in LINEAR if not (n == "zf" and K > N)]
    return {n.upper(): (lambda H, n=n: linear_beams(n, H, P, sigma2)) for n in names}


def _clock(fn, x, budget_s: float = 1.0, most: int = 5, warm: bool = False) -> float:
    """Seconds of one ``fn(x)`` call: the median of up to ``most`` calls within ``budget_s``, after a compiling
    call unless ``warm`` (already compiled for these shapes)."""
    if not warm:
        jax.block_until_ready(fn(x))
    times, start = [], time.perf_counter()
    while len(times) < most and (not times or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(x))
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(name: str, fn, H, utility: str, sigma2: float, repeats: int) -> dict:
    """Utilities per sample, samples/s on the whole batch and one-sample latency [ms] of ``fn: H -> W``."""
    f = jax.jit(fn)
    W = jax.block_until_ready(f(H))
    u = np.asarray(jb.utility(utility, H, W, sigma2, PC))
    seconds = _clock(f, H, warm=True)  # the call above compiled it (SCA-EE at K = N: minutes per call)
    one = [_clock(f, H[i : i + 1], budget_s=0.0, most=1) for i in range(repeats)]
    return {"method": name, "u": u, "samples_per_s": len(H) / seconds, "latency_ms": 1e3 * statistics.median(one)}


def frontier(rows: list[dict]) -> None:
    """Mark ``rows[i]["frontier"]``: no other row is at least as good and as fast, and better in one."""
    for r in rows:
        r["frontier"] = not any(
            o is not r
            and o["quality"] >= r["quality"]
            and o["samples_per_s"] >= r["samples_per_s"]
            and (o["quality"] > r["quality"] or o["samples_per_s"] > r["samples_per_s"])
            for o in rows
        )


def cached_models(runs: Path, utility: str, K: int, N: int, train_missing: bool, notes: list[str]) -> dict:
    """``{name: fn(H) -> W}`` of the ``cpu`` models of the experiment cache at (K, N) for ``utility``."""
    from experiments.context import Context  # the experiment cache; benchmarks stand above experiments

    ctx = Context("cpu", runs, progress=train_missing)
    out = {}
    for kind in MODELS:
        if not (train_missing or ctx.pretrained_dir(kind, utility, K, N).exists()):
            notes.append(f"{kind.upper()}-{utility.upper()} at ({K}, {N}) is not in {runs}: skipped ({MAKE})")
            continue
        model, params = ctx.pretrained(kind, utility, K, N)
        out[kind.upper()] = lambda H, m=model, p=params: m.apply({"params": p}, H, jnp.full(H.shape[0], P))
    if train_missing or ctx.ubert_dir(K, N).exists():
        model, params = ctx.pretrained_ubert(K, N)
        task = jb.TASKS.index(utility)
        out["UBERT"] = lambda H, m=model, p=params: m.apply(
            {"params": p}, H, jnp.full(H.shape[0], P), jnp.full(H.shape[0], task, jnp.int32)
        )
    else:
        notes.append(f"UBERT at ({K}, {N}) is not in {runs}: skipped ({MAKE})")
    return out


def sao_method(path: Path, sigma2: float, K: int, N: int) -> dict:
    from jaxbeam.jobs.sao import load_sao, sao_model

    cfg, params = load_sao(path)
    if cfg.P != P or abs(cfg.sigma2 - sigma2) > 1e-9 * sigma2 or K > cfg.max_users or N > cfg.max_antennas:
        raise SystemExit(
            f"--sao: the model was trained at P = {cfg.P}, sigma2 = {cfg.sigma2:g} for (K, N) <= "
            f"({cfg.max_users}, {cfg.max_antennas}); this system is P = {P}, sigma2 = {sigma2:g}, ({K}, {N})"
        )
    model = sao_model(cfg)
    name = f"MT-SAO{'-lift' if cfg.lift else ''} (Q_i = {cfg.infer_steps})"
    return {name: lambda H: model.apply({"params": params}, H, P)}


def run(args) -> list[dict]:
    rows, notes = [], []
    for system, K, N, sigma2 in SMOKE_SYSTEMS if args.smoke else SYSTEMS:
        H = jb.rayleigh(jax.random.key(args.seed), (args.samples,), K, N)
        for utility in jb.TASKS:
            solvers = solver_methods(utility, sigma2, SMOKE_TOLS if args.smoke else WMMSE_TOLS)
            methods = {**closed_forms(K, N, sigma2), **solvers}
            if system == "bert4beam" and args.runs is not None:
                methods.update(cached_models(args.runs, utility, K, N, args.train_missing, notes))
            if system == "k_eq_n" and utility == "sr" and args.sao is not None:
                methods.update(sao_method(args.sao, sigma2, K, N))
            measured = []
            for name, fn in methods.items():
                measured.append(measure(name, fn, H, utility, sigma2, args.repeats))
                if args.progress:
                    m = measured[-1]
                    print(f"  ({K}, {N}) {utility.upper()} {name}: {m['samples_per_s']:,.0f}/s", flush=True)
            best = np.max([m["u"] for m in measured if m["method"] in solvers], axis=0)
            panel = []
            for m in measured:
                quality = 100.0 * float(np.mean(m.pop("u"))) / float(np.mean(best))
                panel.append(
                    {"system": system, "K": K, "N": N, "sigma2": sigma2, "utility": utility, "quality": quality, **m}
                )
            frontier(panel)
            rows += sorted(panel, key=lambda r: -r["samples_per_s"])
    for n in notes:
        print(n)
    return rows


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = list(dict.fromkeys((r["system"], r["K"], r["N"], r["sigma2"]) for r in rows))
    fig, axes = plt.subplots(len(systems), len(jb.TASKS), figsize=(5 * len(jb.TASKS), 4 * len(systems)), squeeze=False)
    for i, (system, K, N, s2) in enumerate(systems):
        for j, utility in enumerate(jb.TASKS):
            ax, panel = axes[i][j], [r for r in rows if r["system"] == system and r["utility"] == utility]
            for r in panel:
                ax.scatter(r["samples_per_s"], r["quality"], c="C3" if r["frontier"] else "C0", s=18)
                ax.annotate(
                    r["method"],
                    (r["samples_per_s"], r["quality"]),
                    fontsize=6,
                    xytext=(3, 2),
                    textcoords="offset points",
                )
            front = sorted((r for r in panel if r["frontier"]), key=lambda r: r["samples_per_s"])
            ax.plot([r["samples_per_s"] for r in front], [r["quality"] for r in front], "C3--", lw=1)
            ax.set_xscale("log")
            ax.set_xlabel("samples/s (jitted, one batch)")
            ax.set_ylabel(f"{utility.upper()} [% of the best solver]")
            ax.set_title(f"({K}, {N}), {10 * np.log10(P / s2):.0f} dB, {utility.upper()}")
            ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=1024, help="channels per system (the throughput batch)")
    p.add_argument("--repeats", type=int, default=5, help="one-sample calls timed for the latency")
    p.add_argument("--runs", type=Path, default=Path("runs/experiments/cpu"), help="experiment cache of cpu models")
    p.add_argument("--no-models", dest="runs", action="store_const", const=None, help="closed forms and solvers only")
    p.add_argument("--train-missing", action="store_true", help="train models missing from --runs (~1.5 min each)")
    p.add_argument(
        "--sao", type=Path, help="a paper-002 run (jaxbeam pretrain --model sao_lift --workdir RUN): RUN/model"
    )
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--out", type=Path, default=Path("results/frontier.json"))
    p.add_argument("--quiet", dest="progress", action="store_false")
    p.add_argument("--smoke", action="store_true", help="one small system, 16 channels, no models (CI check)")
    args = p.parse_args(argv)
    if args.smoke:
        args.samples, args.repeats, args.runs, args.sao = min(args.samples, 16), 1, None, None
    if args.samples < 1 or args.repeats < 1:
        p.error(f"--samples and --repeats must be >= 1; got {args.samples}, {args.repeats}")
    if args.sao is not None and not (args.sao / "config.json").is_file():
        p.error(f"--sao must be a run's model folder with a config.json; got {args.sao}")
    t0 = time.perf_counter()
    rows = run(args)
    for system, utility in dict.fromkeys((r["system"], r["utility"]) for r in rows):
        panel = [r for r in rows if r["system"] == system and r["utility"] == utility]
        K, N, s2 = panel[0]["K"], panel[0]["N"], panel[0]["sigma2"]
        print(f"\n({K}, {N}), P = {P:g} W, sigma2 = {s2:g} W, {utility.upper()}, {args.samples} channels:")
        table = [
            [
                r["method"],
                f"{r['quality']:.2f}",
                f"{r['samples_per_s']:,.0f}",
                f"{r['latency_ms']:.2f}",
                "yes" if r["frontier"] else "",
            ]
            for r in panel
        ]
        print(markdown_table(["method", "% of best solver", "samples/s", "latency [ms]", "frontier"], table))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"samples": args.samples, "seed": args.seed, "rows": rows}, indent=1))
    plot(rows, args.out.with_suffix(".png"))
    print(f"\n{time.perf_counter() - t0:.0f} s; wrote {args.out} and {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
