"""The public WMMSE solver ``jb.wmmse``: weighted sum-rate maximisation under the total power constraint (3b) or
per-antenna budgets, batched and jitted.

The total-power iteration, its state and steps (``wmmse_init`` / ``wmmse_step`` / ``wmmse_beams``) live in
:mod:`jaxbeam.solvers._wmmse_total`; the per-antenna solver in :mod:`jaxbeam.solvers.wmmse_antenna`.
"""

from __future__ import annotations

from jax.typing import ArrayLike

from jaxbeam.core import _checks
from jaxbeam.core._jit import public
from jaxbeam.core.power import POWER_CONSTRAINTS, split_budget
from jaxbeam.solvers._wmmse_total import WMMSEState, wmmse_beams, wmmse_fixed, wmmse_init, wmmse_step, wmmse_total
from jaxbeam.solvers.wmmse_antenna import wmmse_antenna

DEFAULTS = {"total": {"tol": 1e-4, "window": 3}, "antenna": {"tol": 1e-6, "window": 5}}
"""``tol`` and ``window`` when not given, per ``power``."""


@public(static=("tol", "max_iter", "multiplier", "stop", "window", "power", "return_info"))
def wmmse(
    H: ArrayLike,
    P: ArrayLike,
    sigma2: ArrayLike = 0.1,
    weights: ArrayLike | None = None,
    tol: float | None = None,
    max_iter: int = 500,
    mask: ArrayLike | None = None,
    *,
    multiplier: str = "closed",
    stop: str = "rates",
    window: int | None = None,
    power: str = "total",
    return_info: bool = False,
):
    r"""Weighted sum-rate maximisation by WMMSE, batched over any leading shape (Sec. III, eqs. 2-3).

    .. math::
        \max_W \sum_k \alpha_k \log_2\!\Big(1 + \frac{|h_k^H w_k|^2}{\sum_{i\ne k} |h_k^H w_i|^2
        + \sigma_k^2}\Big) \quad \text{s.t.} \quad \|W\|_F^2 \le P

    Starts from RZF and iterates until a sample's stopping test holds or ``max_iter``; converged samples
    are frozen (and compacted away) while the rest continue. jit-compatible (``tol``, ``max_iter``,
    ``stop``, ``window``, ``return_info`` static). Stopping tests (``stop=``):

    * ``"rates"`` (default): for ``window`` consecutive iterations, every user's weighted rate changed by
      at most ``tol`` times the mean rate per active user, ``max_k |dR_k| <= tol U / K``. At high SNR
      the sum rate alone creeps: from RZF WMMSE slowly trades one user's rate against the others' (often
      switching a user off over a hundred iterations) while the sum moves by less than ``tol`` per
      iteration; the per-user test sees the trade. Within 0.1 % (mean sum rate) of a run to
      convergence at 0-20 dB SNR and ``K <= N``.
    * ``"paper"``: one iteration's relative change of the weighted sum rate ``|dU| <= tol |U|`` (the
      paper's rule, convergence accuracy 1e-4); ends up to ~1 % below convergence at 15-20 dB with
      ``K = N``.

    Args:
      H: complex ``(..., K, N)`` channels.
      P: power budget [W] (> 0), scalar or per sample ``(...,)``.
      sigma2: noise power [W], scalar, per sample ``(...,)`` or per user ``(..., K)``.
      weights: optional rate weights ``(..., K)`` (default: sum rate).
      tol: relative tolerance of the stopping test, in (0, 1); default 1e-4 (``power="antenna"``: 1e-6, the
        per-antenna solver's own rule, :func:`jaxbeam.wmmse_antenna`).
      max_iter: iteration cap (int >= 0).
      mask: optional bool ``(..., K)``; absent users get zero beams and do not count.
      multiplier: how each beam update meets the power budget: ``"closed"`` (default; the normalised
        WMMSE of Christensen et al. 2008: closed-form multiplier, beams scaled onto the sphere, one
        K x K inverse per iteration) or ``"search"`` (Shi et al.'s update with the multiplier found to
        float round-off by a safeguarded secant search, several inverses per iteration). Both never
        decrease the utility and share their fixed points; see :func:`mmse_update_bm`.
      stop: the stopping test, ``"rates"`` (default) or ``"paper"`` (see above).
      window: consecutive calm iterations ``"rates"`` requires (int >= 1; ``"paper"`` uses 1); default 3
        (``power="antenna"``: 5).
      power: ``"total"`` (default, the constraint above) or ``"antenna"``: ``P / N`` on every antenna,
        ``sum_k |W[k, n]|^2 <= P / N``, by :func:`jaxbeam.wmmse_antenna` with ``tol`` and ``window`` (its
        stop); ``multiplier`` and ``stop`` have no meaning there and must stay at their defaults.
      return_info: also return ``{"utility": (...,), "iterations": (...,), "converged": (...,)}``
        (weighted sum rate in bit/s/Hz, int32, bool).

    Returns:
      complex ``(..., K, N)`` beamformers with ``||W||_F^2 <= P`` (projected onto the power ball; ``= P``
      up to rounding when the constraint is active, which it is for the sum rate); and the info dict if
      requested.
    """
    power = _checks.name_in("power", power, POWER_CONSTRAINTS)
    tol = DEFAULTS[power]["tol"] if tol is None else tol
    window = DEFAULTS[power]["window"] if window is None else window
    if power == "antenna":
        for name, value, default in (("multiplier", multiplier, "closed"), ("stop", stop, "rates")):
            if value != default:
                raise ValueError(f'{name}={value!r} applies to power="total" only; leave it out with power="antenna"')
        P_n = split_budget(H, P, "H")
        return wmmse_antenna(H, P_n, sigma2, weights, tol, max_iter, mask, window=window, return_info=return_info)
    return wmmse_total(
        H, P, sigma2, weights, tol, max_iter, mask, multiplier=multiplier, stop=stop, window=window,
        return_info=return_info,
    )  # fmt: skip


__all__ = ["WMMSEState", "wmmse", "wmmse_beams", "wmmse_fixed", "wmmse_init", "wmmse_step"]
