r"""Exact max-min SINR beamforming under a total power constraint (the MR problem of Sec. III).

.. math::
    \max_W \min_k \mathrm{SINR}_k(W) \quad \text{s.t.} \quad \|W\|_F^2 \le P

is quasi-convex: for a common SINR target :math:`\gamma`, the minimum power needed,

.. math::
    P(\gamma) = \min \|W\|_F^2 \ \text{s.t.}\ \mathrm{SINR}_k \ge \gamma \ \forall k,

is a convex (second-order cone) problem with zero duality gap, and the max-min optimum is the largest
:math:`\gamma` with :math:`P(\gamma) \le P`. By uplink-downlink duality (Schubert & Boche, IEEE TVT 2004;
Wiesel, Eldar & Shamai, IEEE TSP 2006) the dual variables :math:`\lambda_k` (virtual uplink powers)
are the fixed point of the standard interference function

.. math::
    \lambda_k = \frac{1}{(1 + 1/\gamma)\, \tilde h_k^H \big(I + \sum_i \lambda_i \tilde h_i \tilde h_i^H\big)^{-1}
    \tilde h_k}, \quad \tilde h_k = h_k / \sigma_k,
    \qquad P(\gamma) = \sum_k \lambda_k ,

(channels normalised by the noise), reached monotonically from below, so an iterate whose sum
exceeds ``P`` proves that :math:`\gamma` is infeasible. The optimal downlink beams point along
:math:`(I + \sum_i \lambda_i h_i h_i^H)^{-1} h_k` and their powers solve the K x K linear system that puts
every SINR at :math:`\gamma`. The solver bisects :math:`\log\gamma` between the RZF min-SINR (feasible)
and :math:`\min_k P\|h_k\|^2/\sigma_k^2` (an upper bound), warm-starting each fixed point from the last
feasible one. Everything runs on K x K matrices of the channels' span (see ``_common``), with
:func:`jaxbeam.linalg.hpd_solve`.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from jaxbeam.linalg import hpd_solve
from jaxbeam.solvers import _common as C
from jaxbeam.solvers.wmmse import rzf_coef


def _woodbury(Gm, lam, mask_f):
    """``M^{-1} L Gm`` with ``L = diag(sqrt(lam))``, ``M = I + L Gm L`` (HPD)."""
    K = Gm.shape[-1]
    dtype = Gm.dtype
    s = jnp.sqrt(lam).astype(dtype)
    M = jnp.eye(K, dtype=dtype) + s[..., :, None] * Gm * s[..., None, :]
    return s, hpd_solve(M, s[..., :, None] * Gm)


def _fixed_point_map(Gm, lam, gamma, mask_f):
    """One application of the interference function: ``1 / ((1 + 1/gamma) h_k^H Sigma^{-1} h_k)``."""
    s, X = _woodbury(Gm, lam, mask_f)
    # Q = Gm - Gm L M^{-1} L Gm ; only the diagonal is needed.
    GL = Gm * s[..., None, :]
    q = jnp.real(jnp.diagonal(Gm, axis1=-2, axis2=-1)) - jnp.real(jnp.sum(GL * jnp.swapaxes(X, -1, -2), axis=-1))
    q = jnp.maximum(q, jnp.finfo(q.dtype).tiny)
    return jnp.where(mask_f > 0, 1.0 / ((1.0 + 1.0 / gamma[..., None]) * q), 0.0)


def _min_power(Gm, lam0, gamma, P, mask_f, rtol, max_fp):
    """Iterate the fixed point from ``lam0`` (below the fixed point) until converged or sum > P."""

    def cond(c):
        i, lam, done = c
        return (i < max_fp) & ~jnp.all(done)

    def body(c):
        i, lam, done = c
        new = _fixed_point_map(Gm, lam, gamma, mask_f)
        total, old_total = jnp.sum(new, -1), jnp.sum(lam, -1)
        fin = (total > P) | (jnp.abs(total - old_total) <= rtol * total)
        lam = jnp.where(done[..., None], lam, new)
        return i + 1, lam, done | fin

    _, lam, _ = lax.while_loop(cond, body, (jnp.zeros((), jnp.int32), lam0, jnp.zeros(gamma.shape, bool)))
    return lam


def _downlink(Gm, lam, gamma, mask_f):
    """Downlink coefficients meeting SINR = gamma for every present user, from the dual ``lam``."""
    K = Gm.shape[-1]
    dtype = Gm.dtype
    s, X = _woodbury(Gm, lam, mask_f)
    Yd = jnp.eye(K, dtype=dtype) - s[..., :, None] * X  # (I + Lambda Gm)^{-1}
    Yd = Yd * mask_f[..., None, :].astype(dtype)
    n = jnp.real(jnp.diagonal(C.mh(Yd) @ Gm @ Yd, axis1=-2, axis2=-1))
    Yu = Yd / jnp.sqrt(jnp.where(n > 0, n, 1.0))[..., None, :].astype(dtype)  # unit-norm beams
    F = C.abs2(Gm @ Yu)  # F[j, k] = |h_j^H d_k|^2
    eye = jnp.eye(K, dtype=bool)
    A = jnp.where(eye, jnp.diagonal(F, axis1=-2, axis2=-1)[..., None, :] / gamma[..., None, None], -F)
    present = (mask_f[..., :, None] > 0) & (mask_f[..., None, :] > 0)
    A = jnp.where(present, A, jnp.where(eye, 1.0, 0.0))
    # A is a non-singular M-matrix when gamma is feasible: elimination without pivoting is stable.
    p = hpd_solve(A, mask_f[..., None])[..., 0]
    p = jnp.maximum(p, 0.0) * mask_f
    return Yu * jnp.sqrt(p)[..., None, :].astype(dtype)


def maxmin_exact(
    H: ArrayLike,
    P: ArrayLike,
    sigma2: ArrayLike = 0.1,
    *,
    mask: ArrayLike | None = None,
    bisect_steps: int | None = None,
    fp_rtol: float | None = None,
    max_fp: int = 1000,
    return_info: bool = False,
):
    r"""Globally optimal max-min SINR (hence max-min rate, MR) beamformers, batched and jittable.

    Bisection on the common SINR target with the duality fixed point as the feasibility test (module
    docstring). The result puts every present user at the same SINR and uses the full power ``P``
    (both to the bisection's precision; the final beams are scaled onto ``||W||_F^2 = P``).

    Args:
      H: complex ``(..., K, N)`` channels (any ``K``, ``N``; for ``K > N`` the achievable SINR is bounded).
      P: power budget [W] (> 0), scalar or per sample ``(...,)``.
      sigma2: noise power [W], scalar, per sample ``(...,)`` or per user ``(..., K)``.
      mask: optional bool ``(..., K)``; absent users get zero beams and do not count in the min.
      bisect_steps: bisection steps on ``log gamma`` (default 34 in float32, 64 in float64).
      fp_rtol: relative tolerance of the fixed point (default 1e-6 in float32, 1e-13 in float64).
      max_fp: cap on fixed-point iterations per bisection step.
      return_info: also return ``{"sinr": (...,) the certified common SINR target, "utility": (...,)
        min rate [bit/s/Hz]}``.

    Returns:
      complex ``(..., K, N)`` beamformers with ``||W||_F^2 = P``.
    """
    Hn, P, mask_f, _ = C.prepare(H, P, sigma2, mask)
    f64 = jnp.finfo(P.dtype).bits > 32
    steps = int(bisect_steps) if bisect_steps is not None else (64 if f64 else 34)
    rtol = float(fp_rtol) if fp_rtol is not None else (1e-13 if f64 else 1e-6)
    Gm = C.gram(Hn)
    Y0 = rzf_coef(Gm, P, mask_f)
    g_lo = jnp.maximum(C.min_over_present(C.sinr_of(Y0, Gm, mask_f), mask_f), jnp.finfo(P.dtype).tiny)
    g_hi = P * C.min_over_present(jnp.real(jnp.diagonal(Gm, axis1=-2, axis2=-1)), mask_f) * (1 + 1e-6)
    g_hi = jnp.maximum(g_hi, g_lo)
    lam_lo = jnp.zeros(mask_f.shape, P.dtype)

    def body(_, c):
        lo, hi, lam_lo = c
        mid = jnp.sqrt(lo * hi)
        lam = _min_power(Gm, lam_lo, mid, P, mask_f, rtol, max_fp)
        ok = jnp.sum(lam, -1) <= P
        return jnp.where(ok, mid, lo), jnp.where(ok, hi, mid), jnp.where(ok[..., None], lam, lam_lo)

    lo, hi, lam_lo = lax.fori_loop(0, steps, body, (g_lo, g_hi, lam_lo))
    lam = _min_power(Gm, lam_lo, lo, P, mask_f, rtol, max_fp)
    Y = _downlink(Gm, lam, lo, mask_f)
    pw = C.power_of(Y, Gm)
    Y = Y * jnp.sqrt(P / jnp.where(pw > 0, pw, 1.0))[..., None, None].astype(Y.dtype)
    # Keep RZF where the bisection never left its start (degenerate samples): never worse than RZF.
    mr = C.min_over_present(C.rates_of(Y, Gm, mask_f), mask_f)
    mr0 = C.min_over_present(C.rates_of(Y0, Gm, mask_f), mask_f)
    better = jnp.isfinite(mr) & (mr >= mr0)
    Y = jnp.where(better[..., None, None], Y, Y0)
    W = C.beams(Y, Hn)
    if return_info:
        return W, {"sinr": lo, "utility": jnp.where(better, mr, mr0)}
    return W
