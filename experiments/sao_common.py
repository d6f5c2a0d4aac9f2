"""What the paper-002 experiment modules (``experiments.sao_*``) share: systems per preset, the cache of
trained MT-SAO(-lift) models, evaluation against the baselines on the same channels, and the command line.

Each module is ``python -m experiments.sao_NAME --preset smoke|cpu|paper`` (``--runs``, ``--results``,
``--seed``, ``--quiet`` as for the BERT4beam experiments; the BERT training-budget options do not apply:
every model trains for its SAO preset's Algorithm 1 budget, :func:`jaxbeam.configs.get_sao_preset`).

Systems: 002 trains one model for K_m = N_m = 40 and evaluates at (40, 28) (Figs. 4, 5), at N = 28 over K
(Figs. 6, 8), at K = 40 over N (Fig. 7) and at (40, 40) (Table 2). The ``cpu`` preset (K_m = N_m = 16)
scales that to (16, 12), N = 12 over K in {4, 8, 12, 16}, K = 16 over N in {4, 8, 12, 16} and (16, 16):
about the same loads K / N. ``smoke`` uses K_m = N_m = 4 and one point per sweep.

Models are trained once and cached under ``<runs>/sao/<kind>_<K_m>x<N_m>-<hash>``, the hash of the
:class:`jaxbeam.configs.SAOConfig` they train with (experiments that use the same config share the model);
:func:`jaxbeam.jobs.sao.train_sao` resumes a killed run and refuses a folder of another config. Q_i
(``infer_steps``) is read at inference only, so configs that differ in it alone share one trained model.
Every table gives the model's mean sum rate beside LMMSE (RZF with the true noise power, eq. 5, the model's
own start), ZF (K <= N) and WMMSE (tol 1e-5) on the same held-out Rayleigh channels, and % of WMMSE.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

import jaxbeam as jb
from experiments.common import parse_args
from experiments.report import Report, write_report
from jaxbeam.configs import SAOConfig, get_sao_preset
from jaxbeam.data.format import fingerprint
from jaxbeam.jobs.report import markdown_table
from jaxbeam.jobs.sao import initial_params, load_sao, model_sum_rates, reference_sum_rates, train_sao


@dataclasses.dataclass(frozen=True)
class Systems:
    """The evaluation systems of one preset (module docstring) and the held-out channels per point."""

    overloaded: tuple[int, int]  # Figs. 4, 5: (40, 28) in 002
    fixed_N: int  # Figs. 6, 8: N = 28, K swept
    users: tuple[int, ...]
    fixed_K: int  # Fig. 7: K = 40, N swept
    antennas: tuple[int, ...]
    full: tuple[int, int]  # Table 2: (40, 40)
    samples: int


TRAINED_INFER_STEPS = 5
"""The Q_i recorded in a cached model's config (the value of the runs cached before Q_i left the key)."""

SYSTEMS = {
    "paper": Systems((40, 28), 28, (8, 16, 24, 32, 40), 40, (8, 16, 24, 32, 40), (40, 40), 1000),
    "cpu": Systems((16, 12), 12, (4, 8, 12, 16), 16, (4, 8, 12, 16), (16, 16), 256),
    "smoke": Systems((4, 3), 3, (4,), 4, (3,), (4, 4), 16),
}


class SAOContext:
    """Trained SAO models of one preset, cached by config, and held-out channels (module docstring)."""

    def __init__(self, preset: str, runs: Path, *, seed: int = 0, progress: bool = True):
        if preset not in SYSTEMS:
            raise ValueError(f"preset must be one of {tuple(SYSTEMS)}; got {preset!r}")
        self.preset, self.runs, self.seed, self.progress = preset, Path(runs), seed, progress
        self.systems = SYSTEMS[preset]
        self.trained: dict[str, dict] = {}  # tag -> {"config", "train_seconds", "workdir"}

    def config(self, **overrides) -> SAOConfig:
        return get_sao_preset(self.preset, seed=self.seed, **overrides)

    def model(self, tag: str, **overrides) -> tuple[SAOConfig, dict]:
        """``(config, best parameters)`` of the preset's MT-SAO-lift with ``overrides``; trained once, then
        loaded (an unfinished run resumes)."""
        cfg = self.config(**overrides)
        # training reads Q_t, never Q_i: the model is trained (and keyed) with Q_i at TRAINED_INFER_STEPS,
        # so configs differing in Q_i alone share it, and returned with the Q_i asked for
        trained = dataclasses.replace(cfg, infer_steps=TRAINED_INFER_STEPS)
        kind = "sao_lift" if cfg.lift else "sao"  # the folder is named by the config: equal configs share it
        workdir = self.runs / "sao" / f"{kind}_{cfg.max_users}x{cfg.max_antennas}-{fingerprint(trained.to_dict())}"
        if self.progress:
            print(f"MT-SAO model {tag!r}: {cfg.total_steps:,} training steps -> {workdir}", flush=True)
        run = train_sao(trained, workdir, progress=self.progress)
        self.trained[tag] = {"overrides": overrides, "train_seconds": run.train_seconds, "workdir": str(workdir)}
        return cfg, load_sao(workdir)[1]

    def untrained_params(self, cfg: SAOConfig) -> dict:
        """Initial parameters of ``cfg``'s model: zero output layers, so it is LMMSE + the gradient steps."""
        return initial_params(cfg)

    def channels(self, K: int, N: int, samples: int | None = None) -> jax.Array:
        """Held-out Rayleigh channels ``(samples, K, N)`` at (K, N): the same for every experiment of a seed."""
        key = jax.random.fold_in(jax.random.key(self.seed + 20_002), 1000 * K + N)
        return jb.rayleigh(key, (samples or self.systems.samples,), K, N)

    def point(self, K: int, N: int, models: dict, *, steps: int | None = None, snr_db: float | None = None) -> dict:
        """Mean sum rates of ``models`` (name -> ``(config, params)``) and of LMMSE, ZF, WMMSE at (K, N), %
        of WMMSE, and seconds per sample; ``steps`` (Q_i) and ``snr_db`` override the models' own."""
        H = self.channels(K, N)
        cfg0 = next(iter(models.values()))[0]
        sigma2 = cfg0.sigma2 if snr_db is None else cfg0.P / 10.0 ** (snr_db / 10.0)
        refs, secs = reference_sum_rates(H, cfg0.P, sigma2)
        ladder = refs.pop("wmmse_k")
        rec = {"K": K, "N": N, "samples": int(H.shape[0]), "snr_db": 10 * np.log10(cfg0.P / sigma2)}
        rec.update({k: None if v is None else float(np.mean(v)) for k, v in refs.items()})
        rec["wmmse_seconds"] = secs["wmmse"]
        for name, (cfg, params) in models.items():
            rates, seconds = model_sum_rates(cfg, params, H, steps=steps, sigma2=sigma2)
            rec[name], rec[f"{name}_seconds"] = float(np.mean(rates)), seconds
        for k in (*models, "rzf", "zf"):
            rec[f"{k}_pct"] = None if rec[k] is None else 100.0 * rec[k] / rec["wmmse"]
        rec["ladder_pct"] = {k: 100.0 * float(np.mean(v)) / rec["wmmse"] for k, v in ladder.items()}
        for name in models:  # each model's fair speed baseline: the cheapest WMMSE-k at >= its quality
            reach = [k for k in ladder if rec["ladder_pct"][k] >= rec[f"{name}_pct"]]
            rec[f"{name}_matched_k"] = reach[0] if reach else None
            rec[f"{name}_matched_seconds"] = secs[reach[0]] if reach else None
        return rec


def fmt(v, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def plot_lines(path: Path, x, series: dict, xlabel: str, title: str, ylabel: str = "sum rate [bit/s/Hz]") -> None:
    """One line per ``series`` entry (name -> values over ``x``; None values are skipped)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for name, ys in series.items():
        pts = [(a, b) for a, b in zip(x, ys, strict=True) if b is not None]
        if pts:
            style = "--" if name in ("LMMSE", "ZF", "WMMSE") else "-o"
            ax.plot(*zip(*pts, strict=True), style, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_sao_experiment(name: str, doc: str, body: Callable[[SAOContext], Report], argv=None) -> Report:
    """Parse the command line, run ``body`` on an :class:`SAOContext`, print the table and write the files."""
    args = parse_args(name, doc, argv)
    for flag in ("steps", "minutes", "finetune_epochs", "finetune_lr"):
        if getattr(args, flag) is not None:
            raise SystemExit(
                f"--{flag.replace('_', '-')} does not apply to the paper-002 experiments: "
                "their models train for the SAO preset's Algorithm 1 budget"
            )
    runs = args.runs or Path("runs") / "experiments" / args.preset
    ctx = SAOContext(args.preset, runs, seed=args.seed, progress=not args.quiet)
    t0 = time.perf_counter()
    report = body(ctx)
    seconds = time.perf_counter() - t0
    base = ctx.config()
    settings = {
        "preset": args.preset,
        "seed": args.seed,
        "K_m x N_m": f"{base.max_users} x {base.max_antennas}",
        "T": base.num_layers,
        "W": base.window,
        "Q_t": base.train_steps,
        "Q_i": base.infer_steps,
        "training steps per model": f"{base.total_steps:,} (Algorithm 1, batch {base.batch_size})",
        "SNR": f"{base.snr_db:g} dB",
        "held-out channels per point": ctx.systems.samples,
        "models": {tag: {"overrides": t["overrides"], "train_s": round(t["train_seconds"], 1)}
                   for tag, t in ctx.trained.items()},
    }  # fmt: skip
    path = write_report(name, report, args.results, settings, seconds)
    print(f"\n{report.title}\n\n{markdown_table(report.header, report.rows, '.2f')}\n")
    print(f"wrote {path} ({seconds / 60:.1f} min)")
    return report
