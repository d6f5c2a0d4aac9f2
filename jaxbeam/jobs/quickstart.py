"""``jaxbeam quickstart``: the main job on a small preset, from nothing to a table that means something.

Makes (or reuses) labels, pre-trains one BERT per utility (SR, MR, EE) at (K, N) = (6, 12) on power
budgets P in {1, 2, 3} W, then prints eq. 31 performance of BERT beside MRT, ZF, RZF, RZF_BAL and WMMSE,
all against the label solver (WMMSE for SR, the exact max-min optimum for MR, SCA for EE), per P and at
the unseen user counts K* in {5, 7}. The table is also written as markdown (``quickstart.md``), JSON and
a PNG bar chart into the run directory. Every step is cached by what determines it (labels by their
identity, models by config, labels and budget): a second run only re-evaluates.

Budget: a fixed number of training steps per model (:data:`STEPS_PER_MODEL`: 16,000 on ``cpu``, about
5 min on a 2-core CPU at ~55 steps/s; UBERT gets that times the number of tasks, at ~35 steps/s), so the
same command gives the same numbers on any machine. ``minutes_per_model`` (``--minutes``) trains on a clock instead; its
results depend on the machine and say so in the table header and in ``quickstart.json``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import jax

from jaxbeam import configs
from jaxbeam.core.utility import TASKS
from jaxbeam.data.format import fingerprint
from jaxbeam.jobs.builders import bert_model, ubert_model
from jaxbeam.jobs.evaluate import REFERENCES, performance_rows
from jaxbeam.jobs.labels import labels_for
from jaxbeam.jobs.pretrain import pretrain, pretrain_ubert
from jaxbeam.jobs.report import markdown_table
from jaxbeam.jobs.runs import UBERT_CPU_STEPS_PER_SECOND, budget_record, describe_budget

METHODS = ("bert", *REFERENCES)
STEPS_PER_MODEL = {"cpu": 16_000, "smoke": 40}
"""Training steps per BERT model by preset (``cpu``: 5 min x ~55 steps/s on a 2-core CPU, rounded); a
preset not listed trains its own ``epochs``."""


@dataclasses.dataclass(frozen=True)
class QuickstartOptions:
    preset: str = "cpu"
    workdir: Path = Path("runs/quickstart")
    P: tuple[float, ...] = (1.0, 2.0, 3.0)
    samples_per_power: int = 4000
    kstar: tuple[int, ...] = (5, 7)
    kstar_samples_per_power: int = 300
    steps_per_model: int | None = None  # None: STEPS_PER_MODEL[preset] (or the preset's epochs)
    minutes_per_model: float | None = None  # a clock budget instead of steps (machine-dependent results)
    utilities: tuple[str, ...] = TASKS
    seed: int = 0
    progress: bool = True
    model: str = "bert"  # "ubert": one multi-task UBERT for all utilities, budget per model x utilities
    overrides: dict = dataclasses.field(default_factory=dict)  # config fields (``--set``), e.g. ubert_head

    def budget(self, factor: int = 1) -> dict:
        """The budget of one model (:func:`jaxbeam.jobs.runs.budget_record`), ``factor`` times the per-model one."""
        if self.minutes_per_model is not None:
            if self.steps_per_model is not None:
                raise ValueError("give steps_per_model or minutes_per_model, not both")
            return budget_record(minutes=self.minutes_per_model * factor)
        steps = STEPS_PER_MODEL.get(self.preset) if self.steps_per_model is None else self.steps_per_model
        if steps is None:
            return budget_record(epochs=configs.get_preset(self.preset).train.epochs)
        return budget_record(steps=int(steps) * factor)


def _kw(budget: dict) -> dict:
    return {"steps": budget.get("steps"), "minutes": budget.get("minutes")}


def _run_dir(root: Path, name: str, cfg, budget: dict, sets) -> Path:
    """``root/<name>-<hash>``: the hash of the config, the budget and the label sets' identities."""
    ident = {"config": cfg.to_dict(), "budget": budget, "labels": {u: x.meta.get("sha256") for u, x in sets.items()}}
    return root / f"{name}-{fingerprint(ident)}"


def _run_ubert(opts: QuickstartOptions, root: Path) -> list[dict]:
    """UBERT: one model pre-trained on SR, MR and EE labels together (Algorithm 1), rows per task."""
    cfg = configs.get_preset(opts.preset, **opts.overrides, P=opts.P, samples_per_power=opts.samples_per_power)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=opts.seed))
    sy = cfg.system
    sets = {u: labels_for(root, cfg, u, sy.K, opts.samples_per_power, opts.seed, opts.progress) for u in TASKS}
    budget = opts.budget(len(TASKS))
    workdir = _run_dir(root, "ubert", cfg, budget, sets)
    if opts.progress:
        what = describe_budget(budget, UBERT_CPU_STEPS_PER_SECOND)
        print(f"pre-training UBERT on {', '.join(u.upper() for u in TASKS)} ({what}) -> {workdir}")
    params = pretrain_ubert(cfg, sets, workdir, **_kw(budget), progress=opts.progress)
    model, rows = ubert_model(cfg), []
    for u in opts.utilities:
        t = TASKS.index(u)
        kw = {"model": model, "params": params, "task": t, "model_name": "ubert"}
        rows += performance_rows(u, sets[u].split("test"), sy.sigma2, sy.Pc, **kw)
        for K in opts.kstar:
            test = labels_for(root, cfg, u, K, opts.kstar_samples_per_power, opts.seed + 1000 + K, opts.progress)
            rows += performance_rows(u, test, sy.sigma2, sy.Pc, **kw)
    return rows


def run(opts: QuickstartOptions) -> dict:
    t_start = time.perf_counter()
    root = Path(opts.workdir)
    if opts.model not in ("bert", "ubert"):
        raise ValueError(f"model must be 'bert' or 'ubert'; got {opts.model!r}")
    rows = _run_ubert(opts, root) if opts.model == "ubert" else []
    for u in opts.utilities if opts.model == "bert" else ():
        cfg = configs.get_preset(
            opts.preset, **opts.overrides, utility=u, P=opts.P, samples_per_power=opts.samples_per_power
        )
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=opts.seed))
        sy = cfg.system
        labels = labels_for(root, cfg, u, sy.K, opts.samples_per_power, opts.seed, opts.progress)
        budget = opts.budget()
        workdir = _run_dir(root, f"bert_{u}", cfg, budget, {u: labels})
        if opts.progress:
            print(f"pre-training BERT for {u.upper()} ({describe_budget(budget)}) -> {workdir}")
        params = pretrain(cfg, labels, workdir, **_kw(budget), progress=opts.progress)
        model = bert_model(cfg)
        rows += performance_rows(u, labels.split("test"), sy.sigma2, sy.Pc, model=model, params=params)
        for K in opts.kstar:
            test = labels_for(root, cfg, u, K, opts.kstar_samples_per_power, opts.seed + 1000 + K, opts.progress)
            rows += performance_rows(u, test, sy.sigma2, sy.Pc, model=model, params=params)
    budget = opts.budget(len(TASKS) if opts.model == "ubert" else 1)
    result = {
        "rows": rows,
        "budget": {**budget, "per_model": describe_budget(budget)},
        "machine_dependent": budget["machine_dependent"],
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(opts).items()},
        "device": f"{jax.devices()[0].device_kind} x{jax.device_count()}",
        "seconds": time.perf_counter() - t_start,
    }
    write_outputs(root, result)
    return result


def _methods(rows) -> tuple[str, ...]:
    return ("ubert", *REFERENCES) if any("ubert" in r for r in rows) else METHODS


def table(rows) -> str:
    METHODS = _methods(rows)  # noqa: N806 (the BERT or the UBERT columns)
    header = ["utility", "K", "P [W]", "test samples", "label U", *(m.upper() for m in METHODS)]
    body = []
    for r in rows:
        body.append(
            [r["utility"].upper(), r["K"], f"{r['P']:g}", r["samples"], f"{r['label']:.3f}"]
            + [f"{r[m]:.1f}" if m in r else "-" for m in METHODS]
        )
    return markdown_table(header, body)


def write_outputs(root: Path, result: dict) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "quickstart.json").write_text(json.dumps(result, indent=2))
    model = _methods(result["rows"])[0].upper()
    budget = result.get("budget", {})
    if budget.get("machine_dependent"):
        how = f"Training budget: {budget['per_model']} per model: MACHINE-DEPENDENT results. "
    elif budget:
        how = f"Training budget: {budget['per_model']} per model (fixed: the same numbers on any machine). "
    else:
        how = ""
    text = (
        "Performance (eq. 31, % of the label solver's mean utility; label solver: WMMSE for SR, "
        f"exact max-min (`jb.maxmin_exact`) for MR, projected-gradient SCA for EE). {model} trained at K = 6; "
        "K = 5, 7 are unseen user counts. References at full power: MRT, ZF, RZF (equal powers), RZF_BAL (RZF "
        "directions with max-min SINR-balancing powers, `jb.maxmin_power`), WMMSE. "
        + how
        + "\n\n"
        + table(result["rows"])
        + "\n"
    )
    (root / "quickstart.md").write_text(text)
    plot(result["rows"], root / "quickstart.png")


def plot(rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    METHODS = _methods(rows)  # noqa: N806
    utilities = [u for u in TASKS if any(r["utility"] == u for r in rows)]
    fig, axes = plt.subplots(1, len(utilities), figsize=(6 * len(utilities), 4), squeeze=False)
    for ax, u in zip(axes[0], utilities, strict=True):
        rs = [r for r in rows if r["utility"] == u]
        x = np.arange(len(rs))
        width = 0.8 / len(METHODS)
        for i, m in enumerate(METHODS):
            vals = [r.get(m, np.nan) for r in rs]
            ax.bar(x + (i - (len(METHODS) - 1) / 2) * width, vals, width, label=m.upper())
        ax.set_xticks(x, [f"K={r['K']}\nP={r['P']:g}" for r in rs], fontsize=7)
        ax.axhline(100, color="k", lw=0.8, ls="--")
        ax.set_ylim(0, 110)
        ax.set_title(f"{u.upper()}: % of the label solver (eq. 31)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(METHODS), fontsize=8)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
