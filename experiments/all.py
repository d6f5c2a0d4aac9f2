"""Every paper experiment in one command: ``python -m experiments.all --preset cpu [--suite S]``.

Runs the modules below in order, sharing one cache of labels and models (``--runs``), so later
experiments reuse what earlier ones trained; states the estimated run time up front (an upper bound:
cached work is skipped) and each experiment's measured time at the end. ``--suite bert4beam`` runs
BERT4beam's twelve (paper 000), ``--suite sao`` paper 002's six, ``all`` (default) both. ``--dry-run``
runs nothing and prints the cost plan of :mod:`experiments.plan` (``--dtype``, ``--utilisation`` of the
assumed accelerator).
"""

from __future__ import annotations

import argparse
import importlib
import time

from experiments.common import BUDGETS, budget_from_args, parse_args
from jaxbeam.jobs.compiled import release_compiled_programs
from jaxbeam.jobs.runs import CPU_STEPS_PER_SECOND

# name: (pre-training budgets it adds to the cache, fine-tunings it runs); UBERT counts 3 budgets.
EXPERIMENTS = {
    "fig3_pretraining": (42, 0),
    "table1_power": (0, 0),
    "table2_power_generalization": (18, 0),
    "table3_user_generalization": (0, 0),
    "fig4_csi_error": (0, 0),
    "table5_scenario_finetuning": (0, 16),
    "table4_cross_task": (0, 12),
    "fig5_few_shot": (0, 20),
    "table6_single_task_loss": (6, 0),
    "table7_multi_task_loss": (18, 0),
    "table8_ubert_ablation": (12, 0),
    "fig6_task_sampling": (3, 0),
}
# paper 002's modules, in the order that trains the shared default model first: models each adds to the cache
SAO_EXPERIMENTS = {
    "sao_fig8_baselines": 1,
    "sao_table2_inference_time": 0,
    "sao_fig7_lift": 1,
    "sao_fig4_gradient_steps": 2,
    "sao_fig5_window": 2,
    "sao_fig6_dedicated": 4,
}
SAO_MODEL_MINUTES = {"smoke": 1.0, "cpu": 20.0}  # per model: the cpu quickstart's took 21 min with its grid
FINETUNE_MINUTES = {"cpu": 1.0, "paper": 30.0}  # per fine-tuning, compile included (rough)
PAPER_TRAIN_MINUTES = 600.0  # per budget on one accelerator, 100 epochs of 240,000 samples (rough)
SMOKE_MINUTES = 9.0  # the whole smoke grid from an empty cache: ~8.5 min measured in the test suite (2 cores)


def estimate_minutes(preset: str, budget=None, suite: str = "bert4beam") -> float | None:
    """Upper bound of the run time [min] with an empty cache: budgets x per-model minutes + fine-tunings.

    A step budget counts ``steps / CPU_STEPS_PER_SECOND`` (55 steps/s, the cpu BERT / UBERT on an idle 2-core
    CPU; a busier machine takes longer), a clock budget its minutes, each plus 0.5 min of labels, compilation
    and evaluation; ``paper`` (epochs) counts :data:`PAPER_TRAIN_MINUTES` per budget. Paper 002's models
    (``suite`` ``"sao"`` or ``"all"``) count :data:`SAO_MODEL_MINUTES` each; None where that is unknown
    (``paper``: never run).
    """
    total = 0.0
    if suite in ("sao", "all"):
        if preset not in SAO_MODEL_MINUTES:
            return None
        total += sum(SAO_EXPERIMENTS.values()) * SAO_MODEL_MINUTES[preset]
    if suite == "sao":
        return total
    if preset == "smoke":
        return total + SMOKE_MINUTES
    b = BUDGETS[preset] if budget is None else budget
    if b.minutes is not None:
        per_train = b.minutes + 0.5
    elif b.steps is not None:
        per_train = b.steps / CPU_STEPS_PER_SECOND / 60 + 0.5
    else:
        per_train = PAPER_TRAIN_MINUTES
    return total + sum(t * per_train + f * FINETUNE_MINUTES[preset] for t, f in EXPERIMENTS.values())


SUITES = {"bert4beam": list(EXPERIMENTS), "sao": list(SAO_EXPERIMENTS), "all": [*EXPERIMENTS, *SAO_EXPERIMENTS]}


def _dry_run(preset: str, budget, known) -> int:
    """``--dry-run``: the cost plan of BERT4beam's twelve experiments (:mod:`experiments.plan`); runs none."""
    import dataclasses

    from experiments.plan import H100, format_plan, plan

    if known.utilisation is not None and not 0 < known.utilisation <= 1:
        raise SystemExit(f"--utilisation must be in (0, 1]; got {known.utilisation}")
    acc = H100 if known.utilisation is None else dataclasses.replace(H100, utilisation=known.utilisation)
    print(format_plan(plan(preset, budget, EXPERIMENTS, dtype=known.dtype, accelerator=acc)))
    if known.suite != "bert4beam":
        n = sum(SAO_EXPERIMENTS.values())
        print(f"(paper 002's {n} SAO models of --suite sao are not costed by FLOPs)")
    return 0


def main(argv=None) -> int:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--suite", choices=tuple(SUITES), default="all")
    pre.add_argument("--dry-run", action="store_true")
    pre.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    pre.add_argument("--utilisation", type=float, default=None)
    known, rest = pre.parse_known_args(argv)
    args = parse_args("all", __doc__, rest)
    budget = budget_from_args(args)
    if known.dry_run:
        return _dry_run(args.preset, budget, known)
    est = estimate_minutes(args.preset, budget, known.suite)
    how = f"{budget.steps:,} steps per model at ~{CPU_STEPS_PER_SECOND:g} steps/s" if budget.steps else "its budget"
    names = SUITES[known.suite]
    bound = (
        "an accelerator-sized run (`--dry-run` prints its plan from the compiled steps' FLOPs)"
        if args.preset == "paper"
        else "an unknown time (paper 002's models were never run)"
        if est is None
        else (
            f"about {est:.0f} min at most ({est / 60:.1f} h with {how} on a 2-core CPU; cached labels and models "
            "are reused)"
        )
    )
    print(f"running {len(names)} experiments ({known.suite}) on the {args.preset!r} preset: {bound}", flush=True)
    shared = ["--preset", args.preset, "--results", str(args.results), "--seed", str(args.seed)]
    if args.runs:
        shared += ["--runs", str(args.runs)]
    if args.quiet:
        shared.append("--quiet")
    passthrough = list(shared)  # paper 002's modules take only the shared flags (their budget is the SAO preset's)
    for flag, value in (
        ("--finetune-epochs", args.finetune_epochs),
        ("--finetune-lr", args.finetune_lr),
        ("--steps", args.steps),
        ("--minutes", args.minutes),
    ):
        if value is not None:
            passthrough += [flag, str(value)]
    times = {}
    for name in names:
        t0 = time.perf_counter()
        print(f"\n=== {name} ===", flush=True)
        importlib.import_module(f"experiments.{name}").main(shared if name in SAO_EXPERIMENTS else passthrough)
        times[name] = time.perf_counter() - t0
        release_compiled_programs(0.5)  # one process compiles every experiment's programs: Linux's map limit
    print("\nrun times:")
    for name, s in times.items():
        print(f"  {name:32s} {s / 60:7.1f} min")
    print(f"  {'total':32s} {sum(times.values()) / 60:7.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
