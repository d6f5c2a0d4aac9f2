"""What ``experiments.all`` would cost: ``python -m experiments.all --preset paper --dry-run``.

Compiles the preset's BERT training step ahead of time (eq. 17, Adam; :func:`jaxbeam.jobs.bench.train_throughput`)
at the experiments' two systems, (6, 12) and (8, 16), and reports XLA's FLOPs and memory footprint per step.
The time per step is then measured where that is cheap and meaningful (an accelerator, or any preset but
``paper`` on a CPU: a few real steps) and otherwise projected onto a stated accelerator class as
``FLOPs per step / (peak x utilisation)``. Each experiment's steps are its pre-training budgets (the
single-task models of every kind counted as BERT steps at (8, 16), an upper bound: the baselines are
cheaper and (6, 12) has fewer tokens; UBERT counted as three budgets) plus its fine-tunings
(``finetune_epochs x finetune_samples / batch``). Paper 002's SAO models are not costed by FLOPs.
"""

from __future__ import annotations

import dataclasses
import math

import jax

from experiments.settings import POWERS, Budget
from jaxbeam import configs
from jaxbeam.jobs.bench import train_throughput
from jaxbeam.jobs.report import markdown_table


@dataclasses.dataclass(frozen=True)
class Accelerator:
    """A stated accelerator class for a projection: dense peak [TFLOP/s] per compute dtype and utilisation."""

    name: str
    peak_tflops: dict
    utilisation: float


# H100 SXM dense peaks (NVIDIA's data sheet): bfloat16 989, TF32 494 (XLA's default for float32 matmuls on
# GPUs since Ampere). 20 %: BERT's steps are small (batch 32 of 6-8 tokens), far from the matmul peak.
H100 = Accelerator("NVIDIA H100 SXM (assumed)", {"bfloat16": 989.0, "float32": 494.0}, 0.20)


DEVICE_MEMORY = 16e9  # bytes: the smallest accelerator class the plan checks the compiled footprint against


def steps_per_budget(budget: Budget, batch_size: int) -> int:
    """Training steps of one single-task pre-training budget (UBERT: three of them)."""
    if budget.steps is not None:
        return budget.steps
    if budget.minutes is not None:
        raise ValueError("a --minutes budget has no step count to cost; give --steps or use the preset's")
    train_samples = int(0.8 * budget.samples_per_power * len(POWERS))  # split 8:1:1
    return budget.epochs * math.ceil(train_samples / batch_size)


def plan(
    preset: str,
    budget: Budget,
    experiments: dict,
    *,
    dtype: str = "float32",
    accelerator: Accelerator = H100,
    measure: bool | None = None,
) -> dict:
    """Per-step FLOPs, memory and seconds at (6, 12) and (8, 16), and each experiment's projected minutes.

    ``experiments``: ``{name: (pre-training budgets, fine-tunings)}`` (``experiments.all.EXPERIMENTS``).
    ``measure``: time real steps (default: on an accelerator, or for any preset but ``paper``).
    """
    if not 0 < accelerator.utilisation <= 1:
        raise ValueError(f"utilisation must be in (0, 1]; got {accelerator.utilisation}")
    if dtype not in accelerator.peak_tflops:
        raise ValueError(f"dtype must be one of {tuple(accelerator.peak_tflops)}; got {dtype!r}")
    cfg = configs.get_preset(budget.model_preset)
    batch = cfg.train.batch_size
    if measure is None:
        measure = jax.default_backend() != "cpu" or preset != "paper"
    systems = {}
    for K, N in ((6, 12), (8, 16)):
        row = train_throughput(
            budget.model_preset, dtype, devices=jax.devices()[:1], K=K, N=N, execute=measure, matmuls=False
        )
        if measure:
            row["seconds_source"] = f"measured on {row['device_kind']}"
        else:
            rate = accelerator.peak_tflops[dtype] * 1e12 * accelerator.utilisation
            row["seconds_per_step"] = row["flops_per_step"] / rate
            row["seconds_source"] = (
                f"projected: {accelerator.name}, {accelerator.peak_tflops[dtype]:g} TFLOP/s {dtype} x "
                f"{accelerator.utilisation:.0%}"
            )
        systems[(K, N)] = row
    per_step = systems[(8, 16)]["seconds_per_step"]
    per_budget = steps_per_budget(budget, batch)
    per_finetune = budget.finetune_epochs * math.ceil(budget.finetune_samples / batch)
    rows = []
    for name, (budgets, finetunes) in experiments.items():
        steps = budgets * per_budget + finetunes * per_finetune
        rows.append({"experiment": name, "budgets": budgets, "finetunes": finetunes, "steps": steps,
                     "minutes": steps * per_step / 60})  # fmt: skip
    return {
        "preset": preset,
        "dtype": dtype,
        "batch": batch,
        "steps_per_budget": per_budget,
        "steps_per_finetune": per_finetune,
        "systems": list(systems.values()),
        "rows": rows,
        "total_minutes": sum(r["minutes"] for r in rows),
    }


def format_plan(p: dict) -> str:
    lines = [f"plan for --preset {p['preset']} ({p['dtype']}, batch {p['batch']}, one device):"]
    for r in p["systems"]:
        K, N, mem = r["K"], r["N"], r["memory_bytes"].get("footprint")
        fits = "" if mem is None else f" ({'fits' if mem <= DEVICE_MEMORY else 'does NOT fit'} a 16 GB device)"
        lines.append(
            f"  ({K}, {N}): {r['params']:,} parameters, {r['flops_per_step'] / 1e9:.1f} GFLOP per step, "
            f"compiled footprint {'-' if mem is None else f'{mem / 2**30:.2f} GiB'}{fits}, "
            f"{1e3 * r['seconds_per_step']:.2f} ms per step ({r['seconds_source']})"
        )
    lines.append(
        f"  {p['steps_per_budget']:,} steps per pre-training budget, {p['steps_per_finetune']:,} per fine-tuning; "
        "every step costed at (8, 16)"
    )
    table = [
        [r["experiment"], r["budgets"], r["finetunes"], f"{r['steps']:,}", f"{r['minutes']:,.1f}"] for r in p["rows"]
    ]
    table.append(["total", "", "", f"{sum(r['steps'] for r in p['rows']):,}", f"{p['total_minutes']:,.1f}"])
    return (
        "\n".join(lines) + "\n" + markdown_table(["experiment", "budgets", "fine-tunings", "steps", "minutes"], table)
    )
