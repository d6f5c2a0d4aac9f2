r"""Energy efficiency by a power search on a closed-form direction: the cheap classical EE baseline.

The EE optimum spends less than the budget: below some power, more power buys less rate than it costs. So the
strong cheap baseline for EE is not a full-power precoder but the best of a grid of powers on a cheap
direction,

.. math::
    W^\star = W_{j^\star}, \quad j^\star = \arg\max_{0 \le j < L} \mathrm{EE}(W_j), \quad
    W_j = \mathrm{dir}(H, P r^j), \quad \|W_j\|_F^2 = P r^j ,

with ``dir`` RZF (at each power its own regularisation ``K sigma2 / (P r^j)``), ZF, MRT or WMMSE-k
(:func:`jaxbeam.wmmse_fixed`), ``L`` levels a factor ``r`` apart (default 13 levels 1.5 dB apart: ``P`` down to
``P / 64``). The levels are evaluated one after another inside one jitted call (a ``lax.scan`` keeping the
running best: the memory of one batch); the search is a grid, not an adaptive 1-D search, so its cost is fixed
and its result is the exact maximum over the grid.

:func:`ee_scale` is the continuous, cheaper variant on a *fixed* direction: the beams ``W`` scaled by
``sqrt(t)``, ``t`` in ``[t_min, 1]``, with the best EE found by a golden-section search from the gains of ``W``
computed once. Each rate ``log2(1 + t s_k / (t i_k + sigma2_k))`` is concave in ``t`` (a concave increasing
SINR inside a concave increasing log), so

.. math:: \mathrm{EE}(t) = \frac{\sum_k \log_2\left(1 + \frac{t s_k}{t i_k + \sigma_k^2}\right)}{t \|W\|_F^2 + P_c}

is a concave function over an affine positive one: quasi-concave, so unimodal in ``t`` (and in ``log t``), and
the search converges to its maximum over the interval. One search costs one gains computation
(``O(K^2 N)``, about one RZF) plus ``O(K)`` per step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxbeam.core import _checks
from jaxbeam.core._jit import public
from jaxbeam.core.precoders import mrt, rzf, zf
from jaxbeam.core.utility import TASKS, _prepare, _signal_interference
from jaxbeam.core.utility import utility as utility_fn
from jaxbeam.solvers._common import check_count
from jaxbeam.solvers._wmmse_total import wmmse_fixed

DIRECTIONS = ("rzf", "zf", "mrt", "wmmse")
"""Directions of :func:`power_search` (``"wmmse"``: WMMSE-k, ``wmmse_iterations`` from RZF)."""


def _direction(name: str, H, P, sigma2, mask, k: int):
    if name == "rzf":
        return rzf(H, P, sigma2, mask=mask)
    if name == "zf":
        return zf(H, P, mask=mask)
    if name == "mrt":
        return mrt(H, P, mask=mask)
    return wmmse_fixed(H, P, sigma2, k, mask=mask)


@public(static=("utility", "direction", "levels", "ratio", "wmmse_iterations", "return_power"))
def power_search(
    H: ArrayLike,
    P: ArrayLike,
    sigma2: ArrayLike = 0.1,
    Pc: ArrayLike = 0.5,
    *,
    utility: str = "ee",
    direction: str = "rzf",
    levels: int = 13,
    ratio: float = 2**-0.5,
    wmmse_iterations: int = 0,
    mask: ArrayLike | None = None,
    return_power: bool = False,
):
    """The best of ``levels`` transmit powers ``P ratio^j`` on a closed-form direction (module docstring), batched.

    Args:
      H: complex ``(..., K, N)`` channels.
      P: power budget [W] (> 0), scalar or per sample ``(...,)``.
      sigma2: noise power [W]; Pc: circuit power [W] (EE, eq. 3a; >= 0).
      utility: the utility maximised over the grid (``"ee"``; ``"sr"`` / ``"mr"`` are allowed, and pick full
        power for any direction here, since their utility rises with power).
      direction: one of :data:`DIRECTIONS`.
      levels: grid size L (int >= 1); level 0 is the full budget.
      ratio: power ratio between neighbouring levels, in (0, 1) (default ``2^-1/2``, 1.5 dB).
      wmmse_iterations: k of ``direction="wmmse"`` (int >= 0).
      mask: optional bool ``(..., K)``.
      return_power: also return the chosen power [W] ``(...,)``.

    Returns:
      complex ``(..., K, N)`` beams with ``||W||_F^2 = P ratio^j*`` (and the power if asked).
    """
    _checks.name_in("utility", utility, TASKS)
    _checks.name_in("direction", direction, DIRECTIONS)
    levels = check_count(levels, "levels", 1)
    k = check_count(wmmse_iterations, "wmmse_iterations", 0)
    if not (isinstance(ratio, float | int) and 0.0 < float(ratio) < 1.0):
        raise ValueError(f"ratio must be a number in (0, 1); got {ratio!r}")
    H = _checks.complex_kn("H", H)
    batch = H.shape[:-2]
    P = _checks.real_param("P", P, batch, low=0.0, what="power budget in W").astype(H.real.dtype)
    P = jnp.broadcast_to(P, batch)
    scales = jnp.asarray(float(ratio), H.real.dtype) ** jnp.arange(levels, dtype=H.real.dtype)

    def one(scale):
        W = _direction(direction, H, P * scale, sigma2, mask, k)
        return W, utility_fn(utility, H, W, sigma2, Pc, mask=mask)

    def keep_best(carry, scale):  # the running best: one batch of beams in memory, whatever the number of levels
        W_best, U_best, p_best = carry
        W, U = one(scale)
        better = U > U_best  # strict: ties keep the higher power (the earlier level); NaN never wins
        return (
            jnp.where(better[..., None, None], W, W_best),
            jnp.where(better, U, U_best),
            jnp.where(better, P * scale, p_best),
        ), None

    init = (jnp.zeros(H.shape, H.dtype), jnp.full(batch, -jnp.inf, H.real.dtype), jnp.zeros(batch, H.real.dtype))
    (W, _, p), _ = jax.lax.scan(keep_best, init, scales)
    if return_power:
        return W, p
    return W


_GOLDEN = (5**0.5 - 1) / 2  # 0.618...: the interval kept per golden-section step


@public(static=("steps", "t_min", "return_scale"))
def ee_scale(
    H: ArrayLike,
    W: ArrayLike,
    sigma2: ArrayLike = 0.1,
    Pc: ArrayLike = 0.5,
    *,
    steps: int = 24,
    t_min: float = 2.0**-12,
    mask: ArrayLike | None = None,
    return_scale: bool = False,
):
    """EE's best power on the direction of ``W``: ``sqrt(t*) W`` with ``t*`` the maximiser of EE over
    ``[t_min, 1]`` (module docstring), by ``steps`` golden-section steps in ``log t``, batched.

    The interval in ``log t`` shrinks by 0.618 per step (24 steps: from ``log(1/t_min)`` to ``~1e-5`` of it); the
    result is the best of the last two probes and ``t = 1``, so it is never below ``W`` itself (up to rounding).

    Args:
      H: complex ``(..., K, N)`` channels.
      W: complex ``(..., K, N)`` beams, the direction and the largest power ``||W||_F^2`` [W] (e.g. RZF at ``P``).
      sigma2: noise power [W], as :func:`jaxbeam.sinr`; Pc: circuit power [W] (EE, eq. 3a; >= 0).
      steps: golden-section steps (int >= 1); t_min: the smallest power share searched, in (0, 1).
      mask: optional bool ``(..., K)``.
      return_scale: also return ``t*`` ``(...,)``.

    Returns:
      complex ``(..., K, N)`` beams ``sqrt(t*) W`` (and ``t*`` if asked).
    """
    steps = check_count(steps, "steps", 1)
    if not (isinstance(t_min, float | int) and 0.0 < float(t_min) < 1.0):
        raise ValueError(f"t_min must be a number in (0, 1); got {t_min!r}")
    H, W, s2, mask, batch = _prepare(H, W, sigma2, mask)
    rdtype = s2.dtype
    Pc = _checks.real_param("Pc", Pc, batch, low=0.0, strict=False, what="circuit power in W").astype(rdtype)
    signal, interference, s2 = _signal_interference(H, W, s2)
    present = jnp.ones(signal.shape, bool) if mask is None else mask
    power = jnp.sum(W.real**2 + W.imag**2, axis=(-2, -1))
    tiny = jnp.finfo(rdtype).tiny

    def ee(log_t):  # (...,) -> (...,)
        t = jnp.exp(log_t)[..., None]
        rate = jnp.log1p(t * signal / jnp.maximum(t * interference + s2, tiny))
        sr = jnp.sum(jnp.where(present, rate, 0.0), axis=-1) / jnp.log(2.0)
        return sr / jnp.maximum(jnp.exp(log_t) * power + Pc, tiny)

    g = jnp.asarray(_GOLDEN, rdtype)
    lo = jnp.full(batch, jnp.log(jnp.asarray(t_min, rdtype)))
    hi = jnp.zeros(batch, rdtype)
    x1, x2 = hi - g * (hi - lo), lo + g * (hi - lo)
    state = (lo, hi, x1, x2, ee(x1), ee(x2))

    def step(_, c):
        lo, hi, x1, x2, f1, f2 = c
        left = f1 >= f2  # the maximum is in [lo, x2]: keep it (NaN-free: EE is finite for finite inputs)
        lo, hi = jnp.where(left, lo, x1), jnp.where(left, x2, hi)
        n1, n2 = hi - g * (hi - lo), lo + g * (hi - lo)
        x1, x2 = jnp.where(left, n1, x2), jnp.where(left, x1, n2)  # one probe is reused, one is new
        new = ee(jnp.where(left, x1, x2))
        return lo, hi, x1, x2, jnp.where(left, new, f2), jnp.where(left, f1, new)

    _, _, x1, x2, f1, f2 = jax.lax.fori_loop(0, steps, step, state)
    best, f_best = jnp.where(f1 >= f2, x1, x2), jnp.maximum(f1, f2)
    t = jnp.where(f_best > ee(jnp.zeros(batch, rdtype)), jnp.exp(best), 1.0)
    out = W * jnp.sqrt(t)[..., None, None].astype(W.dtype)
    return (out, t) if return_scale else out


@public(static=("passes", "steps", "return_power"))
def rzf_ee(
    H: ArrayLike,
    P: ArrayLike,
    sigma2: ArrayLike = 0.1,
    Pc: ArrayLike = 0.5,
    *,
    passes: int = 2,
    steps: int = 24,
    mask: ArrayLike | None = None,
    return_power: bool = False,
):
    r"""RZF at its EE-best power, found by alternating the power and RZF's regulariser, batched.

    Pass 1 is :func:`ee_scale` on RZF at the full budget; each further pass re-regularises RZF at the power the
    last pass chose (``K sigma2 / (P t)``, the RZF of that budget), scales it back to ``P`` and searches again:

    .. math:: W_{m} = \mathrm{ee\_scale}\Big(\sqrt{1/t_{m-1}}\ \mathrm{rzf}(H, P t_{m-1})\Big), \quad
              t_0 = 1, \quad \|W_m\|_F^2 = P t_m .

    Each pass costs one RZF and one golden-section search; the power is continuous in ``[P t_min, P]``, where
    :func:`power_search` evaluates 13 RZFs on a grid 1.5 dB apart.

    Args:
      H: complex ``(..., K, N)`` channels.
      P: power budget [W] (> 0), scalar or per sample ``(...,)``.
      sigma2: noise power [W], as :func:`jaxbeam.rzf`; Pc: circuit power [W] (EE, eq. 3a; >= 0).
      passes: the number of passes (int >= 1; 1 is ``ee_scale(H, rzf(H, P))``).
      steps: golden-section steps per pass (:func:`ee_scale`).
      mask: optional bool ``(..., K)``.
      return_power: also return the chosen power [W] ``(...,)``.

    Returns:
      complex ``(..., K, N)`` beams with ``||W||_F^2 = P t`` (and ``P t`` if asked).
    """
    passes = check_count(passes, "passes", 1)
    H = _checks.complex_kn("H", H)
    batch = H.shape[:-2]
    P = jnp.broadcast_to(_checks.real_param("P", P, batch, low=0.0, what="power budget in W"), batch)
    P = P.astype(H.real.dtype)
    t = jnp.ones(batch, H.real.dtype)
    for _ in range(passes):  # a handful: unrolled
        W = rzf(H, P * t, sigma2, mask=mask) * jax.lax.rsqrt(t)[..., None, None].astype(H.dtype)
        W, t = ee_scale(H, W, sigma2, Pc, steps=steps, mask=mask, return_scale=True)
    return (W, P * t) if return_power else W


__all__ = ["DIRECTIONS", "ee_scale", "power_search", "rzf_ee"]
