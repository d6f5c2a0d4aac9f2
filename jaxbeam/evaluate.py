"""Evaluation helpers shared by the CLI, experiments and benchmarks (training-shell side).

``linear_baselines`` computes every utility of the closed-form precoders on one batch in a single
jitted call; ``markdown_table`` renders rows of results for the terminal and for README/results files.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp

from jaxbeam import precoders
from jaxbeam.power import maxmin_power
from jaxbeam.utility import TASKS, utility

LINEAR = ("mrt", "zf", "rzf", "rzf_bal")


def linear_beams(name: str, H, P, sigma2=0.1, *, mask=None):
    """Beams of one closed-form precoder at full power, or None for ZF where ``K > N`` (it does not exist).

    ``name`` in :data:`LINEAR`; ``rzf_bal`` is RZF's directions with the max-min (SINR-balancing) powers of
    :func:`jaxbeam.maxmin_power`.
    """
    if name == "mrt":
        return precoders.mrt(H, P, mask=mask)
    if name == "zf":
        return None if H.shape[-2] > H.shape[-1] else precoders.zf(H, P, mask=mask)
    if name == "rzf":
        return precoders.rzf(H, P, sigma2, mask=mask)
    if name == "rzf_bal":
        return maxmin_power(H, precoders.rzf(H, P, sigma2, mask=mask), P, sigma2, mask=mask)
    raise ValueError(f"names must be drawn from {LINEAR}; got {name!r}")


@partial(jax.jit, static_argnames=("names",))
def linear_baselines(H, P, sigma2=0.1, Pc=0.5, *, names: Sequence[str] = LINEAR, mask=None):
    """Utilities of closed-form precoders (:func:`linear_beams`): ``{name: {task: (...,) array}}``.

    ZF is skipped (absent from the result) when ``K > N``, where it does not exist.
    """
    out = {}
    for name in names:
        W = linear_beams(name, H, P, sigma2, mask=mask)
        if W is not None:
            out[name] = {task: utility(task, H, W, sigma2, Pc, mask) for task in TASKS}
    return out


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
