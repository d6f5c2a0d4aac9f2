"""An experiment's output (:class:`Report`) and its results files: ``NAME.md``, ``NAME.json``, ``NAME.png``."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxbeam.jobs.report import markdown_table


@dataclasses.dataclass
class Report:
    """What an experiment produces: a markdown table, raw rows, settings, and an optional figure.

    ``plot(path)`` (if given) writes the figure as a PNG at ``path``.
    """

    title: str
    header: Sequence[str]
    rows: Sequence[Sequence]
    raw: Any
    notes: str = ""
    plot: Callable[[Path], None] | None = None


def write_report(name: str, report: Report, results: Path, settings: dict, seconds: float) -> Path:
    """``results/NAME.md`` (table + settings), ``NAME.json`` (raw numbers) and ``NAME.png`` (if a plot)."""
    results.mkdir(parents=True, exist_ok=True)
    md = [f"# {report.title}", "", markdown_table(report.header, report.rows, ".2f"), ""]
    if report.notes:
        md += [report.notes.strip(), ""]
    md += [
        "Settings: " + ", ".join(f"{k} = {v}" for k, v in settings.items()),
        "",
        *(
            [f"Training budget: {settings['training_budget']}" + _budget_note(settings), ""]
            if "training_budget" in settings
            else []
        ),
        f"Run time: {seconds / 60:.1f} min on {jax.devices()[0].device_kind} x{jax.device_count()} "
        f"(jax {jax.__version__}). Reproduce: `python -m experiments.{name} --preset {settings['preset']}`.",
        "",
    ]
    (results / f"{name}.md").write_text("\n".join(md))
    payload = {"name": name, "title": report.title, "settings": settings, "seconds": seconds, "raw": report.raw}
    (results / f"{name}.json").write_text(json.dumps(payload, indent=2, default=float))
    if report.plot is not None:
        import matplotlib

        matplotlib.use("Agg")
        report.plot(results / f"{name}.png")
    return results / f"{name}.md"


def _budget_note(settings: dict) -> str:
    if settings.get("machine_dependent"):
        return (
            " per model: a clock, so these numbers are MACHINE-DEPENDENT (another machine trains more or fewer steps)."
        )
    return " per model (fixed: the same numbers on any machine)."


def pct(x) -> str:
    return "-" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.2f}"
