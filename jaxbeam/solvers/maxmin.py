r"""Exact max-min SINR beamforming under a total power constraint (the MR problem of Sec. III).

.. math::
    \max_W \min_k \mathrm{SINR}_k(W) \quad \text{s.t.} \quad \|W\|_F^2 \le P

has zero duality gap with its virtual uplink (Schubert & Boche, IEEE TVT 2004; Wiesel, Eldar & Shamai,
IEEE TSP 2006). With the channels normalised by the noise, :math:`\tilde h_k = h_k / \sigma_k`, and
uplink powers :math:`\lambda_k \ge 0`, MMSE receivers give the uplink SINRs

.. math::
    \mathrm{SINR}^{ul}_k(\lambda) = \frac{\lambda_k}{I_k(\lambda)}, \qquad
    I_k(\lambda) = \frac{1}{\tilde h_k^H \Sigma_{-k}^{-1} \tilde h_k}
    = \frac{1}{\tilde h_k^H \Sigma^{-1} \tilde h_k} - \lambda_k, \qquad
    \Sigma = I + \sum_i \lambda_i \tilde h_i \tilde h_i^H ,

:math:`I` a standard interference function. The optimum :math:`\gamma^*` is the conditional eigenvalue
:math:`\lambda^* = \gamma^* I(\lambda^*)`, :math:`\sum_k \lambda^*_k = P`, and for *every*
:math:`\lambda > 0` with :math:`\sum_k \lambda_k = P`

.. math::
    \min_k \mathrm{SINR}^{ul}_k(\lambda) \le \gamma^* \le \max_k \mathrm{SINR}^{ul}_k(\lambda)   \tag{B}

(the left side is achieved with power ``P``; the right follows from the scalability of ``I``).

``method="balance"`` (default) runs the normalised fixed point :math:`\lambda \leftarrow P\, I(\lambda) /
\sum_k I_k(\lambda)` (Krause's concave Perron-Frobenius theory; Cai, Quek, Tan & Low, IEEE TSP 2012),
which converges geometrically to :math:`\lambda^*`, until the bracket (B) is closed to ``fp_rtol``
relative; each iteration costs one K x K solve. ``method="bisection"`` bisects :math:`\log\gamma`
between the RZF min-SINR and :math:`\min_k P\|\tilde h_k\|^2`, each step testing feasibility with the
(un-normalised) fixed point :math:`\lambda_k = \gamma I_k(\lambda)` from below; slower, kept as an
independent check.

Both end with the downlink: beams along the MMSE directions :math:`\Sigma^{-1} \tilde h_k` of the best
:math:`\lambda`, with the powers that put every SINR at the certified :math:`\gamma` (a K x K M-matrix
system; by duality they need at most ``P``), scaled onto :math:`\|W\|_F^2 = P`. Everything runs on
K x K matrices of the channels' span (see ``_common``), with :func:`jaxbeam.core.linalg.hpd_solve`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from jaxbeam.core._jit import public
from jaxbeam.core.linalg import hpd_solve
from jaxbeam.solvers import _common as C
from jaxbeam.solvers._common import check_count, check_tol
from jaxbeam.solvers._wmmse_kernel import rzf_coef

METHODS = ("balance", "bisection")


def _woodbury(Gm, lam):
    """``M^{-1} L Gm`` with ``L = diag(sqrt(lam))``, ``M = I + L Gm L`` (HPD)."""
    K = Gm.shape[-1]
    dtype = Gm.dtype
    s = jnp.sqrt(lam).astype(dtype)
    M = jnp.eye(K, dtype=dtype) + s[..., :, None] * Gm * s[..., None, :]
    return s, hpd_solve(M, s[..., :, None] * Gm)


def _q(Gm, lam):
    """``q_k = h~_k^H Sigma^{-1} h~_k = diag(Gm - Gm L M^{-1} L Gm)`` (Woodbury), clamped > 0."""
    s, X = _woodbury(Gm, lam)
    GL = Gm * s[..., None, :]
    q = jnp.real(jnp.diagonal(Gm, axis1=-2, axis2=-1)) - jnp.real(jnp.sum(GL * jnp.swapaxes(X, -1, -2), axis=-1))
    return jnp.maximum(q, jnp.finfo(q.dtype).tiny)


def _fixed_point_map(Gm, lam, gamma, mask_f):
    """One application of ``gamma I(lam)``: ``1 / ((1 + 1/gamma) q_k)``."""
    q = _q(Gm, lam)
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


def _bisection(Gm, P, mask_f, g_lo, steps, rtol, max_fp):
    """Bisection on ``log gamma`` with the fixed point as feasibility test: ``(lam, gamma_lo, gamma_hi)``."""
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
    return _min_power(Gm, lam_lo, lo, P, mask_f, rtol, max_fp), lo, hi


def _uplink(Gm, lam, mask_f):
    r"""Uplink SINRs ``lam_k / I_k(lam)`` and the interference function ``I(lam)``, both ``(..., K)``.

    With ``T = L Gm L`` (``L = diag(sqrt(lam))``) and ``M = I + T``: ``lam_k q_k = [T M^{-1}]_kk =
    1 - [M^{-1}]_kk``, so ``SINR_k = lam_k q_k / (1 - lam_k q_k) = 1 / [M^{-1}]_kk - 1`` without the
    cancellation of ``1 / q_k - lam_k`` at high SINR; ``I_k = lam_k / SINR_k``.
    """
    K = Gm.shape[-1]
    dtype = Gm.dtype
    s = jnp.sqrt(lam).astype(dtype)
    eye = jnp.eye(K, dtype=dtype)
    Minv = hpd_solve(eye + s[..., :, None] * Gm * s[..., None, :], jnp.broadcast_to(eye, Gm.shape))
    m = jnp.clip(jnp.real(jnp.diagonal(Minv, axis1=-2, axis2=-1)), jnp.finfo(lam.dtype).tiny, 1.0)
    # Relative accuracy: SINR = (1 - m) / m with 1 - m = [T M^{-1}]_kk computed directly.
    tm = jnp.real(jnp.sum(s[..., :, None] * Gm * s[..., None, :] * jnp.swapaxes(Minv, -1, -2), -1))
    sinr = jnp.where(mask_f > 0, jnp.maximum(tm, 0.0) / m, 0.0)
    tiny = jnp.finfo(lam.dtype).tiny
    interf = jnp.where(mask_f > 0, lam / jnp.maximum(sinr, tiny), 0.0)
    return sinr, interf


class _BalanceState(NamedTuple):
    lam: jax.Array  # (B, K) current uplink powers, sum P
    best_lam: jax.Array  # (B, K) the iterate with the largest lower bound
    lo: jax.Array  # (B,) best lower bound of (B): min uplink SINR of best_lam
    hi: jax.Array  # (B,) best upper bound of (B)
    iteration: jax.Array
    converged: jax.Array


def _balance(Gm, P, mask_f, rtol, max_iter):
    """Normalised fixed point ``lam <- P I(lam) / sum I(lam)`` until ``hi <= lo (1 + rtol)``, bounds (B)."""
    n = jnp.maximum(jnp.sum(mask_f, -1, keepdims=True), 1.0)
    lam0 = mask_f * P[..., None] / n
    B = P.shape[0]
    inf = jnp.full((B,), jnp.inf, P.dtype)
    state = _BalanceState(lam0, lam0, jnp.zeros_like(P), inf, jnp.zeros(B, jnp.int32), ~jnp.any(mask_f > 0, -1))

    def step(s: _BalanceState, args) -> _BalanceState:
        Gm, P, mask_f = args
        ul, interf = _uplink(Gm, s.lam, mask_f)
        lo = C.min_over_present(ul, mask_f)
        hi = -C.min_over_present(-ul, mask_f)
        new = P[..., None] * interf / jnp.maximum(jnp.sum(interf, -1, keepdims=True), jnp.finfo(P.dtype).tiny)
        better = lo > s.lo
        best_lo = jnp.where(better, lo, s.lo)
        best_hi = jnp.minimum(s.hi, hi)
        done = s.converged
        conv = best_hi <= best_lo * (1 + rtol)
        keep = lambda old, x: jnp.where(done.reshape(done.shape + (1,) * (x.ndim - 1)), old, x)
        return _BalanceState(
            lam=keep(s.lam, new),
            best_lam=keep(s.best_lam, jnp.where(better[..., None], s.lam, s.best_lam)),
            lo=keep(s.lo, best_lo),
            hi=keep(s.hi, best_hi),
            iteration=s.iteration + jnp.where(done, 0, 1).astype(jnp.int32),
            converged=done | conv,
        )

    return C.compacting_while(step, state, (Gm, P, mask_f), int(max_iter))


def _downlink(Gm, lam, gamma, mask_f):
    """Downlink coefficients meeting SINR = gamma for every present user, from the dual ``lam``."""
    K = Gm.shape[-1]
    dtype = Gm.dtype
    s, X = _woodbury(Gm, lam)
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
    p = jnp.where(jnp.isfinite(p), jnp.maximum(p, 0.0), 0.0) * mask_f
    return Yu * jnp.sqrt(p)[..., None, :].astype(dtype)


def _check_solver_args(method, bisect_steps, fp_rtol, max_fp):
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    if bisect_steps is not None:
        check_count(bisect_steps, "bisect_steps", 1)
        if method != "bisection":
            raise ValueError(f"bisect_steps applies to method='bisection' only; got method={method!r}")
    if fp_rtol is not None:
        check_tol(fp_rtol, "fp_rtol")
    check_count(max_fp, "max_fp", 1)


@public(static=("method", "bisect_steps", "fp_rtol", "max_fp", "return_info"))
def maxmin_exact(
    H: ArrayLike,
    P: ArrayLike,
    sigma2: ArrayLike = 0.1,
    *,
    mask: ArrayLike | None = None,
    method: str = "balance",
    bisect_steps: int | None = None,
    fp_rtol: float | None = None,
    max_fp: int = 1000,
    return_info: bool = False,
):
    r"""Globally optimal max-min SINR (hence max-min rate, MR) beamformers, batched and jittable.

    The uplink-downlink duality of the module docstring, solved by the normalised fixed point
    (``method="balance"``) or by bisection (``"bisection"``). The result puts every present user at the
    same SINR and uses the full power ``P`` (both to ``fp_rtol``; the final beams are scaled onto
    ``||W||_F^2 = P``). Users whose channel is zero cannot be served (their rate is 0, and so is the min
    rate); they get zero beams and the others are balanced among themselves. Never worse than RZF
    (kept where the iteration ends below it, i.e. only for degenerate samples).

    Args:
      H: complex ``(..., K, N)`` channels (any ``K``, ``N``; for ``K > N`` the achievable SINR is bounded).
      P: power budget [W] (> 0), scalar or per sample ``(...,)``.
      sigma2: noise power [W] (> 0), broadcastable against the per-user shape ``(..., K)``.
      mask: optional bool ``(..., K)``; absent users get zero beams and do not count in the min.
      method: ``"balance"`` (default, fast) or ``"bisection"``.
      bisect_steps: bisection steps on ``log gamma`` (``"bisection"`` only; default 34 in float32, 64 in
        float64).
      fp_rtol: relative tolerance: of the bracket (B) for ``"balance"`` (default 2e-6 in float32, 1e-12
        in float64), of each feasibility fixed point for ``"bisection"`` (1e-6 / 1e-13).
      max_fp: cap on fixed-point iterations (in all for ``"balance"``, per bisection step otherwise).
      return_info: also return ``{"sinr": (...,) a certified feasible common SINR (linear; the returned
        beams reach at least it), "sinr_upper": (...,) an upper bound of the optimum (``"balance"``:
        certified by (B)), "utility": (...,) min rate [bit/s/Hz] of the returned beams (0 where no user is
        present), "iterations": (...,) fixed-point iterations (``"balance"``; 0 for ``"bisection"``)}``.

    Returns:
      complex ``(..., K, N)`` beamformers with ``||W||_F^2 = P`` (zero where no user can be served).
    """
    _check_solver_args(method, bisect_steps, fp_rtol, max_fp)
    Hn, P, mask_f, _ = C.prepare(H, P, sigma2, mask)
    batch = P.shape
    f64 = jnp.finfo(P.dtype).bits > 32
    Gm = C.gram(Hn)
    on = mask_f * (jnp.real(jnp.diagonal(Gm, axis1=-2, axis2=-1)) > 0)  # users that can be served
    Y0 = rzf_coef(Gm, P, mask_f)
    if method == "balance":
        rtol = float(fp_rtol) if fp_rtol is not None else (1e-12 if f64 else 2e-6)
        flat = lambda x: x.reshape((-1,) + x.shape[len(batch) :])
        st = _balance(flat(Gm), flat(P), flat(on), rtol, max_fp)
        unflat = lambda x: x.reshape(batch + x.shape[1:])
        lam, lo, hi, iters = unflat(st.best_lam), unflat(st.lo), unflat(st.hi), unflat(st.iteration)
    else:
        steps = int(bisect_steps) if bisect_steps is not None else (64 if f64 else 34)
        rtol = float(fp_rtol) if fp_rtol is not None else (1e-13 if f64 else 1e-6)
        g_lo = jnp.maximum(C.min_over_present(C.sinr_of(Y0, Gm, on), on), jnp.finfo(P.dtype).tiny)
        lam, lo, hi = _bisection(Gm, P, on, g_lo, steps, rtol, max_fp)
        iters = jnp.zeros(batch, jnp.int32)
    any_on = jnp.any(on > 0, -1)
    lo = jnp.where(any_on, lo, 0.0)
    Y = _downlink(Gm, lam, jnp.maximum(lo, jnp.finfo(P.dtype).tiny), on)
    pw = C.power_of(Y, Gm)
    Y = Y * jnp.where(pw > 0, jnp.sqrt(P / jnp.where(pw > 0, pw, 1.0)), 0.0)[..., None, None].astype(Y.dtype)
    # Keep RZF where the iteration ends below it (degenerate samples): never worse than RZF.
    mr = C.min_over_present(C.rates_of(Y, Gm, mask_f), mask_f)
    mr0 = C.min_over_present(C.rates_of(Y0, Gm, mask_f), mask_f)
    better = jnp.isfinite(mr) & (mr >= mr0) & jnp.all(jnp.isfinite(Y), (-2, -1))
    Y = jnp.where(better[..., None, None], Y, Y0)
    W = C.beams(Y, Hn)
    if return_info:
        present = jnp.any(mask_f > 0, -1)
        utility = jnp.where(present, jnp.where(better, mr, mr0), 0.0)
        sinr_lo = jnp.where(better, lo, C.min_over_present(C.sinr_of(Y0, Gm, mask_f), mask_f))
        info = {
            "sinr": jnp.where(present, sinr_lo, 0.0),
            "sinr_upper": jnp.where(present, jnp.where(any_on, hi, 0.0), 0.0),
            "utility": utility,
            "iterations": iters,
        }
        return W, info
    return W
