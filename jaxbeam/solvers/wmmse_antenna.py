r"""WMMSE under per-antenna power constraints (#19): ``max sum_k alpha_k R_k`` s.t. ``sum_k |W[k, n]|^2 <= P_n``.

The receiver and weight updates are WMMSE's (Shi et al. 2011; channels normalised to unit noise,
``h_k / sigma_k``): ``u_k = h_k^H w_k / (sum_i |h_k^H w_i|^2 + 1)``, ``v_k = 1 / MSE_k``. The beam update
minimises the weighted MSE over the per-antenna set,

.. math::
    \min_W \sum_k w_k^H A w_k - 2 \Re(b_k^H w_k) \quad \text{s.t.} \quad \sum_k |w_k[n]|^2 \le P_n,
    \qquad A = \sum_k \alpha_k v_k |u_k|^2 h_k h_k^H, \quad b_k = \alpha_k v_k u_k h_k .

Under a total budget the minimiser is ``(A + mu I)^{-1} b_k`` with one multiplier; here there are N (one per
antenna, ``(A + D_mu)^{-1} b_k``), and the beams leave the channels' span. jaxbeam solves the quadratic by
ADMM (Boyd et al. 2011, Sec. 5) on the split ``W = Z``, ``Z`` in the per-antenna set:

.. math::
    X \leftarrow (2A + \rho I)^{-1} (2 b_k + \rho (z_k - y_k)), \quad Z \leftarrow \Pi(X + Y), \quad
    Y \leftarrow Y + X - Z,

with ``rho`` twice the total-power multiplier ``sum_k alpha_k v_k |u_k|^2 / sum_n P_n`` (the scale of the
per-antenna ones), one N x N inverse per beam update (:func:`jaxbeam.core.linalg.hpd_solve`, refined once per
step for float32), ``Pi`` the exact projection (:func:`jaxbeam.project_antenna_power`), and the scaled dual ``Y``
carried from one beam update to the next (the multipliers move little between them). Projected gradient with
step ``1 / ||A||_F`` (before label version 3) needed 10^3-10^4 iterations on near-far channels, where ``A``'s
eigenvalues spread over four decades; ADMM's exact inverse does not see that spread.

Near-far channels also make WMMSE itself crawl (it trades rate between users over hundreds of iterations), so
the outer loop is accelerated by SQUAREM (Varadhan and Roland 2008): two WMMSE steps, an extrapolation along
them projected onto the set, and one more step, kept only where it beats the two plain steps. A beam update
is kept only where it does not lose weighted rate, so the weighted sum rate never decreases and every iterate
is feasible to round-off. ``iterations`` counts WMMSE steps (three per SQUAREM step).

Start: the better, per sample, of RZF and total-power WMMSE (budget ``sum_n P_n``) scaled down until their
fullest antenna meets its budget (:func:`jaxbeam.scale_antenna_power`), so the result is never below
either on any sample.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from jaxbeam.core import _checks
from jaxbeam.core._jit import public
from jaxbeam.core.linalg import hpd_solve
from jaxbeam.core.power import scale_antenna_power
from jaxbeam.core.precoders import rzf
from jaxbeam.solvers import _common as C
from jaxbeam.solvers._wmmse_total import wmmse_total


def _weighted_rate(Hn, W, weights):
    """``sum_k alpha_k log2(1 + SINR_k)`` per sample with unit-noise channels ``Hn``."""
    G2 = C.abs2(C.gains(Hn, W))
    sig = jnp.diagonal(G2, axis1=-2, axis2=-1)
    interference = jnp.maximum(jnp.sum(G2, -1) - sig, 0.0)
    return jnp.sum(weights * jnp.log1p(sig / (interference + 1.0)), -1) / jnp.log(2.0)


def _project(W, P_n):
    """Column-wise projection onto ``sum_k |W[k, n]|^2 <= P_n`` (inputs are bounded here: no rescaling)."""
    p = jnp.sum(C.abs2(W), axis=-2)
    return W * jnp.sqrt(P_n / jnp.maximum(p, P_n))[..., None, :].astype(W.dtype)


def _beam_update(Hn, W, Y, weights, P_n, inner_steps: int):
    """WMMSE's receivers and weights at ``W``, then ``inner_steps`` ADMM steps on the beams' quadratic from
    ``(W, Y)`` (module docstring); returns the feasible iterate ``Z`` and the dual ``Y`` for the next call."""
    G = C.gains(Hn, W)  # (..., K, K): h_k^H w_i
    total = jnp.sum(C.abs2(G), -1) + 1.0
    gkk = jnp.diagonal(G, axis1=-2, axis2=-1)
    u = gkk / total
    v = total / jnp.maximum(total - C.abs2(gkk), jnp.finfo(total.dtype).tiny)
    c = weights * v * C.abs2(u)
    A = jnp.einsum("...k,...kn,...km->...nm", c.astype(Hn.dtype), Hn, jnp.conj(Hn))
    b = (weights * v).astype(Hn.dtype)[..., None] * u[..., None] * Hn  # row k: b_k^T
    N = Hn.shape[-1]
    # rho: twice the total-power multiplier sum_k alpha_k v_k |u_k|^2 / sum_n P_n (Christensen et al.), the
    # scale of the per-antenna multipliers (each equals it when the total-power optimum meets every budget)
    rho = 2.0 * jnp.sum(c, -1) / jnp.sum(P_n, -1)
    rho = jnp.where(rho > 0, rho, 1.0)
    eye = jnp.eye(N, dtype=Hn.dtype)
    M = hpd_solve(2.0 * A + rho.astype(Hn.dtype)[..., None, None] * eye, jnp.broadcast_to(eye, A.shape))
    r = rho.astype(W.dtype)[..., None, None]

    def body(_, s):
        Z, Ud = s
        rhs = 2.0 * b + r * (Z - Ud)
        X = jnp.einsum("...km,...nm->...kn", rhs, M)  # rows (2A + rho I)^-1 (2 b_k + ...)
        res = rhs - 2.0 * jnp.einsum("...km,...nm->...kn", X, A) - r * X
        X = X + jnp.einsum("...km,...nm->...kn", res, M)  # one step of iterative refinement (float32)
        Zn = _project(X + Ud, P_n)
        return Zn, Ud + X - Zn

    Z, Ud = lax.fori_loop(0, inner_steps, body, (W, Y / r))
    return Z, r * Ud


@public(static=("tol", "max_iter", "inner_steps", "window", "return_info"))
def wmmse_antenna(
    H: ArrayLike,
    P_n: ArrayLike,
    sigma2: ArrayLike = 0.1,
    weights: ArrayLike | None = None,
    tol: float = 1e-6,
    max_iter: int = 500,
    mask: ArrayLike | None = None,
    *,
    inner_steps: int = 30,
    window: int = 5,
    return_info: bool = False,
):
    r"""Weighted sum-rate maximisation under per-antenna power constraints (module docstring), batched, jitted.

    Args:
      H: complex ``(..., K, N)`` channels.
      P_n: per-antenna budgets [W] (> 0): a scalar for every antenna (e.g. ``P / N``) or ``(..., N)``.
      sigma2: noise power [W] (the noise rule of :mod:`jaxbeam.core._checks`).
      weights: optional rate weights ``(..., K)`` (default: sum rate).
      tol: a sample stops once its weighted sum rate rose by at most ``tol`` (relative) over each of ``window``
        consecutive SQUAREM steps (``iterations`` counts WMMSE steps, three per SQUAREM step).
      max_iter: cap on WMMSE steps (int >= 0).
      mask: optional bool ``(..., K)``; absent users get zero beams.
      inner_steps: ADMM steps per beam update (int >= 1).
      window: see ``tol`` (int >= 1).
      return_info: also return ``{"utility", "iterations", "converged"}`` per sample.

    Returns:
      complex ``(..., K, N)`` beams with ``sum_k |W[k, n]|^2 <= P_n`` for every antenna; never below the
      better of the two feasible starts (module docstring) on any sample.
    """
    tol = C.check_tol(tol)
    max_iter = C.check_count(max_iter, "max_iter", 0)
    inner_steps = C.check_count(inner_steps, "inner_steps", 1)
    window = C.check_count(window, "window", 1)
    H = _checks.complex_kn("H", H)
    batch, K, N = H.shape[:-2], H.shape[-2], H.shape[-1]
    rdtype = H.real.dtype
    P_n = _checks.antenna_budget("P_n", P_n, batch, N)
    P_n = jnp.broadcast_to(P_n.astype(rdtype), batch + (N,))
    ok = jnp.all(P_n > 0, axis=-1)  # a traced P_n <= 0 anywhere: zero beams for the sample
    P_n = jnp.where(ok[..., None], P_n, 1.0)
    P_tot = jnp.sum(P_n, axis=-1)
    mask = jnp.ones(batch + (K,), bool) if mask is None else _checks.user_mask(mask, batch, K)
    mask = jnp.broadcast_to(mask, batch + (K,)) & ok[..., None]
    Hn, _, mask_f, weights = C.prepare(H, P_tot, sigma2, mask, weights)

    starts = [
        scale_antenna_power(rzf(H, P_tot, sigma2, mask=mask), P_n, mask=mask),
        scale_antenna_power(wmmse_total(H, P_tot, sigma2, weights, 1e-4, mask=mask), P_n, mask=mask),
    ]
    rates = [_weighted_rate(Hn, W, weights) for W in starts]
    W0 = jnp.where((rates[1] > rates[0])[..., None, None], starts[1], starts[0])
    U0 = jnp.maximum(rates[0], rates[1])

    def cond(s):
        return (3 * s["i"] < max_iter) & ~jnp.all(s["converged"])

    def step(W, Y, U):
        """One monotone WMMSE iteration: the beam update, kept only where it does not lose rate."""
        Wn, Y = _beam_update(Hn, W, Y, weights, P_n, inner_steps)
        Un = _weighted_rate(Hn, Wn, weights)
        keep = ~(Un >= U)  # an inexact beam update that lost rate (or NaN): keep the previous beams
        return jnp.where(keep[..., None, None], W, Wn), Y, jnp.where(keep, U, Un)

    def body(s):
        # SQUAREM (Varadhan & Roland 2008) on the WMMSE map F: two steps, an extrapolation along them, one
        # step from there; the extrapolated result is kept only where it beats the two plain steps.
        W0, U0_ = s["W"], s["U"]
        W1, Y, U1 = step(W0, s["Y"], U0_)
        W2, Y, U2 = step(W1, Y, U1)
        r, v = W1 - W0, W2 - 2 * W1 + W0
        nr = jnp.sqrt(jnp.sum(C.abs2(r), (-2, -1)))
        nv = jnp.sqrt(jnp.sum(C.abs2(v), (-2, -1)))
        alpha = -jnp.maximum(nr / jnp.where(nv > 0, nv, 1.0), 1.0)
        a = alpha.astype(W0.dtype)[..., None, None]
        Wx = _project(W0 - 2 * a * r + a * a * v, P_n)
        Wx, Y, Ux = step(Wx, Y, _weighted_rate(Hn, Wx, weights))
        better = Ux >= U2
        W = jnp.where(better[..., None, None], Wx, W2)
        U = jnp.where(better, Ux, U2)
        calm = (U - U0_) <= tol * jnp.abs(U)
        streak = jnp.where(calm, s["streak"] + 1, 0)
        frozen = s["converged"]
        return {
            "i": s["i"] + 1,
            "W": jnp.where(frozen[..., None, None], s["W"], W),
            "Y": Y,
            "U": jnp.where(frozen, s["U"], U),
            "streak": jnp.where(frozen, s["streak"], streak),
            "iterations": s["iterations"] + 3 * (~frozen).astype(jnp.int32),
            "converged": frozen | (streak >= window),
        }

    zeros = jnp.zeros(batch, jnp.int32)
    init = {"i": jnp.zeros((), jnp.int32), "W": W0, "Y": jnp.zeros_like(W0), "U": U0, "streak": zeros}
    init["iterations"] = zeros
    init["converged"] = jnp.zeros(batch, bool)
    s = lax.while_loop(cond, body, init)
    W = jnp.where(mask[..., None], s["W"], 0).astype(H.dtype)
    if return_info:
        return W, {"utility": s["U"], "iterations": s["iterations"], "converged": s["converged"]}
    return W
