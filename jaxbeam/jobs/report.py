"""Rendering of result rows for the terminal, README and results files."""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp


def markdown_table(header: Sequence[str], rows: Sequence[Sequence], floatfmt: str = ".3f") -> str:
    """A GitHub-flavoured markdown table; floats formatted with ``floatfmt``."""

    def fmt(v):
        if isinstance(v, float):
            return format(v, floatfmt)
        if hasattr(v, "item") and getattr(v, "ndim", 1) == 0:
            return format(float(v), floatfmt)
        return str(v)

    cells = [[str(h) for h in header]] + [[fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|")
    return "\n".join(lines)


def mean(x) -> float:
    return float(jnp.mean(x))
