"""Every paper experiment in one command: ``python -m experiments.all --preset cpu``.

Runs the modules below in order, sharing one cache of labels and models (``--runs``), so later
experiments reuse what earlier ones trained; states the estimated run time up front (an upper bound:
cached work is skipped) and each experiment's measured time at the end.
"""

from __future__ import annotations

import importlib
import time

from experiments.common import BUDGETS, budget_from_args, parse_args
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
    "table7_multi_task_loss": (12, 0),
    "table8_ubert_ablation": (12, 0),
    "fig6_task_sampling": (3, 0),
}
FINETUNE_MINUTES = {"cpu": 1.0, "paper": 30.0}  # per fine-tuning, compile included (rough)
PAPER_TRAIN_MINUTES = 600.0  # per budget on one accelerator, 100 epochs of 240,000 samples (rough)
SMOKE_MINUTES = 9.0  # the whole smoke grid from an empty cache: ~8.5 min measured in the test suite (2 cores)


def estimate_minutes(preset: str, budget=None) -> float:
    """Upper bound of the run time [min] with an empty cache: budgets x per-model minutes + fine-tunings.

    A step budget counts ``steps / CPU_STEPS_PER_SECOND`` (55 steps/s, the cpu BERT / UBERT on an idle 2-core
    CPU; a busier machine takes longer), a clock budget its minutes, each plus 0.5 min of labels, compilation
    and evaluation; ``paper`` (epochs) counts :data:`PAPER_TRAIN_MINUTES` per budget.
    """
    if preset == "smoke":
        return SMOKE_MINUTES
    b = BUDGETS[preset] if budget is None else budget
    if b.minutes is not None:
        per_train = b.minutes + 0.5
    elif b.steps is not None:
        per_train = b.steps / CPU_STEPS_PER_SECOND / 60 + 0.5
    else:
        per_train = PAPER_TRAIN_MINUTES
    return sum(t * per_train + f * FINETUNE_MINUTES[preset] for t, f in EXPERIMENTS.values())


def main(argv=None) -> int:
    args = parse_args("all", __doc__, argv)
    budget = budget_from_args(args)
    est = estimate_minutes(args.preset, budget)
    how = f"{budget.steps:,} steps per model at ~{CPU_STEPS_PER_SECOND:g} steps/s" if budget.steps else "its budget"
    print(
        f"running {len(EXPERIMENTS)} experiments on the {args.preset!r} preset: about {est:.0f} min at most "
        f"({est / 60:.1f} h with {how} on a 2-core CPU; cached labels and models are reused)",
        flush=True,
    )
    passthrough = ["--preset", args.preset, "--results", str(args.results), "--seed", str(args.seed)]
    if args.runs:
        passthrough += ["--runs", str(args.runs)]
    if args.quiet:
        passthrough.append("--quiet")
    for flag, value in (
        ("--finetune-epochs", args.finetune_epochs),
        ("--finetune-lr", args.finetune_lr),
        ("--steps", args.steps),
        ("--minutes", args.minutes),
    ):
        if value is not None:
            passthrough += [flag, str(value)]
    times = {}
    for name in EXPERIMENTS:
        t0 = time.perf_counter()
        print(f"\n=== {name} ===", flush=True)
        importlib.import_module(f"experiments.{name}").main(passthrough)
        times[name] = time.perf_counter() - t0
    print("\nrun times:")
    for name, s in times.items():
        print(f"  {name:32s} {s / 60:7.1f} min")
    print(f"  {'total':32s} {sum(times.values()) / 60:7.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
