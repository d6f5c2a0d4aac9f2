"""What every experiment module imports: the command line (:func:`run_experiment`), re-exported with the
budgets (:mod:`experiments.settings`), the cache of labels and models (:mod:`experiments.context`) and the
results files (:mod:`experiments.report`).

Every experiment module is ``python -m experiments.NAME --preset smoke|cpu|paper`` and calls
:func:`run_experiment` with a function ``body(ctx) -> Report``. The :class:`Context` hands out label sets
and trained models by what they are (utility, (K, N), power levels, model kind, loss), caching each under
``--runs`` (default ``runs/experiments/<preset>``), so an experiment that needs BERT-SR at (6, 12) reuses the
one another experiment trained, and an interrupted experiment resumes: label generation continues from
its last chunk and training from its last orbax checkpoint (:func:`jaxbeam.train.fit`).

Cache keys (policy: regenerate into another path, verify on load): every cached folder is
``<readable name>-<hash>``, the hash (:func:`jaxbeam.data.format.fingerprint`) of everything that determines it:
for label sets their identity (:func:`jaxbeam.data.generate.label_config`: solver, tolerance, K, N, P, samples,
seed, sigma2, Pc, channel source, dtype, label-solver version); for models the config (size, loss,
learning rate, seed...), the module, the budget and the label sets' identities; for fine-tunings also the
digest of the pre-trained parameters and the fine-tuning budget. A changed setting therefore trains or
solves into a new folder; a folder whose stored ``meta.json`` / ``config.json`` identity does not match
(e.g. copied by hand) stops with a ``ValueError`` naming the differing fields.

Budgets: a fixed number of training steps per model (:class:`Budget` ``steps``: 5,000 on ``cpu``, ~1.5 min
for BERT on a 2-core CPU at ~55 steps/s; UBERT three times the steps at ~35 steps/s, ~7 min), the same on
every machine; ``--minutes`` trains on a clock instead, and the results files then say that they depend on
the machine.

Conventions shared by all experiments (where the paper is silent, docs/design.md and this list decide):

* pre-training sets hold ``samples_per_power`` labels per P in {1, 2, 3} W (paper: 80,000), split 8:1:1;
  models are trained on all three power levels at once (per-sample P through the GPA) unless an
  experiment says otherwise (Table II trains at P = 1 only);
* BERT and the baselines are pre-trained with the supervised loss eq. 17, UBERT with eqs. 29-30 and
  Algorithm 1; BERT is fine-tuned without labels (eq. 18), UBERT with labels (Sec. V-C2);
* performance is eq. 31 against the label solver (WMMSE for SR, the exact max-min optimum for MR, SCA for
  EE) on the test split,
  and every table carries the references :data:`REFS` (RZF, RZF_BAL, WMMSE; Fig. 3 adds MRT and ZF) on
  the same samples: a learned model is worth something only where it beats them.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

from experiments.context import Context, pool
from experiments.report import Report, pct, write_report
from experiments.settings import ADAPTERS, BUDGETS, KINDS, POWERS, REF_HEADER, REFS, Budget
from jaxbeam.jobs.report import markdown_table
from jaxbeam.jobs.runs import describe_budget

__all__ = [
    "ADAPTERS", "BUDGETS", "KINDS", "POWERS", "REFS", "REF_HEADER", "Budget", "Context", "Report",
    "budget_from_args", "parse_args", "pct", "pool", "run_experiment", "write_report",
]  # fmt: skip


def parse_args(name: str, doc: str, argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog=f"python -m experiments.{name}", description=doc.split("\n\n")[0])
    ap.add_argument("--preset", choices=tuple(BUDGETS), default="cpu", help="data / training budget (default cpu)")
    ap.add_argument("--runs", type=Path, help="cache of labels and models (default runs/experiments/<preset>)")
    ap.add_argument("--results", type=Path, default=Path("results"), help="output folder (default results)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    ap.add_argument("--finetune-epochs", type=int, help="fine-tuning epochs (default: the preset's)")
    ap.add_argument("--finetune-lr", type=float, help="fine-tuning learning rate (default: the preset's)")
    ap.add_argument("--steps", type=int, help="training steps per model (default: the preset's; UBERT x 3)")
    ap.add_argument(
        "--minutes", type=float, help="train each model on a clock of this many minutes (machine-dependent results)"
    )
    args = ap.parse_args(argv)
    if args.steps is not None and args.steps < 1:
        ap.error(f"--steps must be a positive integer; got {args.steps}")
    if args.minutes is not None and not args.minutes > 0:
        ap.error(f"--minutes must be positive; got {args.minutes}")
    if args.steps is not None and args.minutes is not None:
        ap.error("give --steps or --minutes, not both")
    if args.finetune_epochs is not None and args.finetune_epochs < 1:
        ap.error(f"--finetune-epochs must be a positive integer; got {args.finetune_epochs}")
    if args.finetune_lr is not None and not args.finetune_lr > 0:
        ap.error(f"--finetune-lr must be positive; got {args.finetune_lr}")
    return args


def budget_from_args(args: argparse.Namespace) -> Budget:
    """The preset's :class:`Budget` with the command line's overrides (fine-tuning, ``--steps``, ``--minutes``)."""
    over = {"finetune_epochs": args.finetune_epochs, "finetune_lr": args.finetune_lr}
    budget = dataclasses.replace(BUDGETS[args.preset], **{k: v for k, v in over.items() if v is not None})
    if getattr(args, "steps", None) is not None:
        budget = dataclasses.replace(budget, steps=args.steps, minutes=None)
    if getattr(args, "minutes", None) is not None:
        budget = dataclasses.replace(budget, minutes=args.minutes, steps=None)
    return budget


def run_experiment(name: str, doc: str, body: Callable[[Context], Report], argv=None) -> Report:
    """Parse the command line, run ``body`` on a :class:`Context`, print the table and write the files."""
    args = parse_args(name, doc, argv)
    runs = args.runs or Path("runs") / "experiments" / args.preset
    ctx = Context(args.preset, runs, seed=args.seed, progress=not args.quiet, budget=budget_from_args(args))
    t0 = time.perf_counter()
    report = body(ctx)
    seconds = time.perf_counter() - t0
    train_budget = ctx.budget.train_budget()
    settings = {
        "preset": args.preset,
        **dataclasses.asdict(ctx.budget),
        "seed": args.seed,
        "training_budget": describe_budget(train_budget),
        "machine_dependent": train_budget["machine_dependent"],
    }
    path = write_report(name, report, args.results, settings, seconds)
    print(f"\n{report.title}\n\n{markdown_table(report.header, report.rows, '.2f')}\n")
    print(f"wrote {path} ({seconds / 60:.1f} min)")
    return report
