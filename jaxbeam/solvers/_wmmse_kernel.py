r"""The batch-minor kernel of :mod:`jaxbeam.solvers._wmmse_total`: one MMSE beam update (the receivers, MSE
weights and the power multiplier, ``"closed"`` or ``"search"``) on ``(K, K, B)`` arrays with the flattened
batch on the fastest axis, and RZF's coefficients as the start. See that module for the equations."""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from jaxbeam.core.linalg import gauss_jordan_inverse_bm
from jaxbeam.solvers import _common as C


def _newton_steps(dtype) -> int:
    """Cap on multiplier-search steps (most samples stop after 2-5 Newton steps)."""
    return 100 if jnp.finfo(dtype).bits > 32 else 60


# The solver keeps its K x K work "batch-minor": arrays of shape (K, K, B), (K, B) and (B,) with the
# flattened batch on the last (fastest) axis, so every elementwise step and every K-term sum is one long
# vectorised loop over the batch. On CPU this is several times faster than the (B, K, K) layout, whose
# minor axis is only K long. ``_bm`` marks functions and arrays in this layout.


def _to_bm(x, nbatch):
    """``(*batch, *rest) -> (*rest, B)`` with the ``nbatch`` leading batch axes flattened into ``B``."""
    return jnp.moveaxis(x.reshape((-1,) + x.shape[nbatch:]), 0, -1)


def _from_bm(x, batch):
    """Inverse of :func:`_to_bm`: ``(*rest, B) -> (*batch, *rest)``."""
    return jnp.moveaxis(x, -1, 0).reshape(tuple(batch) + x.shape[:-1])


def _bmm_bm(A, B):
    """``A @ B`` for batch-minor ``(K, K, B)`` matrices."""
    return jnp.sum(A[:, :, None, :] * B[None, :, :, :], axis=1)


def _diag_bm(X):
    """Diagonal ``(K, B)`` of batch-minor ``(K, K, B)`` matrices."""
    K = X.shape[0]
    return jnp.sum(jnp.where(jnp.eye(K, dtype=bool)[:, :, None], X, 0), axis=1)


def _wsr_bm(G, weights):
    """Weighted sum rate ``(B,)`` from the gains ``G[k, i] = h~_k^H w_i`` ``(K, K, B)``, weights ``(K, B)``."""
    G2 = C.abs2(G)
    signal = _diag_bm(G2)
    interference = jnp.maximum(jnp.sum(G2, axis=1) - signal, 0.0)
    return jnp.sum(weights * jnp.log1p(signal / (interference + 1.0)), axis=0) / jnp.log(2.0)


def _user_power_bm(Y, Gm):
    """``||w_k||^2 = y_k^H Gm y_k`` ``(K, B)`` of the beams ``W = Y^T H~`` of batch-minor coefficients ``(K, K, B)``."""
    return jnp.sum(jnp.real(jnp.conj(Y) * _bmm_bm(Gm, Y)), axis=0)


def _rzf_coef_bm(Gm, P, mask_f):
    """Batch-minor :func:`rzf_coef`: ``Gm (K, K, B)``, ``P (B,)``, ``mask_f (K, B)`` -> ``Y (K, K, B)``.

    The RZF coefficients are ``Y = (Gm + a I)^{-1}`` (``a = K_active / P``, unit noise; an absent user's
    diagonal entry is 1 and its column is zeroed), each column then scaled to power ``P / K_active``.
    """
    K = Gm.shape[0]
    k_act = jnp.maximum(jnp.sum(mask_f, axis=0), 1.0)
    diag = jnp.where(mask_f > 0, (k_act / P)[None], 1.0)  # (K, B)
    eye = jnp.eye(K, dtype=bool)[:, :, None]
    Y = gauss_jordan_inverse_bm(Gm + jnp.where(eye, diag[:, None, :], 0.0).astype(Gm.dtype))
    Y = Y * mask_f[None].astype(Y.dtype)
    norms = _user_power_bm(Y, Gm)
    scale = jnp.where(norms > 0, jnp.sqrt((P / k_act)[None] / jnp.where(norms > 0, norms, 1.0)), 0.0)
    return Y * scale[None].astype(Y.dtype)


def rzf_coef(Gm, P, mask_f):
    """Span coefficients ``(..., K, K)`` of the RZF / LMMSE beams (equal power ``P / K_active`` per user)."""
    batch = Gm.shape[:-2]
    P = jnp.broadcast_to(P, batch)
    nb = len(batch)
    return _from_bm(_rzf_coef_bm(_to_bm(Gm, nb), _to_bm(P, nb), _to_bm(mask_f, nb)), batch)


MULTIPLIERS = ("closed", "search")


def mmse_update_bm(G, Gm, P, weights, mu0, *, newton_steps: int, multiplier: str, mu_scale=None, v_power=None):
    """One WMMSE beam update in the batch-minor layout.

    Args: the gains ``G = Gm @ Y`` of the current coefficients and ``Gm``, both ``(K, K, B)``; ``P``
    and ``mu0`` ``(B,)``; ``weights`` ``(K, B)`` (zero for absent users). ``mu_scale`` and ``v_power``
    (``multiplier="closed"`` only; None = 1, WMMSE itself): the closed multiplier times ``mu_scale`` and the
    MSE weights raised to ``v_power`` (``v_k <- v_k^{v_power}``), the learned knobs of
    :func:`jaxbeam.solvers.unfolded.unfolded_wmmse`. The update is differentiable everywhere (absent users
    included: their square roots and phases are taken of safe stand-ins).

    ``multiplier="closed"`` (the normalised WMMSE of Christensen et al., IEEE TWC 2008): substitute
    ``W = sqrt(P / ||W~||^2) W~`` and move the scale into the receivers; the power constraint then
    turns into the noise term ``|u_k|^2 ||W~||^2 / P`` of an unconstrained weighted-MSE problem, whose
    exact minimiser over ``W~`` is the regularised solution with ``mu = sum_k alpha_k v_k |u_k|^2 / P``
    (unit noise), scaled onto the sphere. Every block (``u``, ``v``, ``W~``) is still minimised exactly,
    so the weighted sum rate never decreases, and the fixed points are those of WMMSE (at a KKT point
    of (3) the exact multiplier equals this one). One K x K inverse per iteration.

    ``multiplier="search"`` (Shi et al.'s update as written): the multiplier solves
    ``p(mu) = tr(Z^H T0 Z) = P`` with ``Z = (T + mu I)^{-1} R``: safeguarded
    secant steps on ``p(mu)^{-1/2} - P^{-1/2}`` (nearly linear in ``mu``), warm-started at ``mu0`` (the
    previous iteration's multiplier), inside a bracket ``[lo, hi]`` that every evaluation tightens; a
    step that leaves the bracket is replaced by a geometric bisection step. Runs until
    ``|p - P| <= rtol P`` (1e-5 in float32, 1e-11 in float64) or the bracket closes, for every sample
    of the batch. Each step costs one K x K inverse.

    Returns the new coefficients ``(K, K, B)`` and the multiplier ``(B,)``.
    """
    K = Gm.shape[0]
    dtype = Gm.dtype
    eye = jnp.eye(K, dtype=bool)[:, :, None]
    gkk = _diag_bm(G)  # (K, B)
    total = jnp.sum(C.abs2(G), axis=1) + 1.0  # received power + unit noise
    u = gkk / total
    sig = C.abs2(gkk)
    v = total / jnp.maximum(total - sig, jnp.finfo(total.dtype).tiny)  # 1 / MSE = 1 + SINR
    if v_power is not None:
        v = v**v_power
    au2 = C.abs2(u)
    active = (weights > 0) & (au2 > 0)
    safe = lambda x: jnp.where(active, x, 1.0)  # noqa: E731  (finite gradients of sqrt and |u| at absent users)
    c = jnp.where(active, weights * v * au2, 0.0)
    d = jnp.where(active, jnp.sqrt(safe(c)), 0.0)
    phase = jnp.where(active, u / jnp.sqrt(safe(au2)), 0.0)
    r = jnp.where(active, jnp.sqrt(safe(weights * v)), 0.0) * phase  # (K, B)
    T0 = d[:, None] * Gm * d[None, :]
    T = T0 + jnp.where(eye, jnp.where(active, 0.0, 1.0)[:, None, :], 0.0).astype(dtype)

    def evaluate(mu):
        Z = gauss_jordan_inverse_bm(T + jnp.where(eye, mu, 0.0).astype(dtype)) * r[None]  # inv @ diag(r)
        # T0 Z = R - mu Z (as (T + mu I) inv = I and the inactive rows of Z are zero), so
        # p = tr(Z^H T0 Z) = Re tr(Z^H R) - mu ||Z||^2 needs no matrix product.
        p = jnp.sum(jnp.real(jnp.conj(_diag_bm(Z)) * r), 0) - mu * jnp.sum(C.abs2(Z), (0, 1))
        return p, Z

    if multiplier == "closed":
        mu = jnp.sum(c, axis=0) / P
        if mu_scale is not None:
            mu = mu * mu_scale
        p, Z = evaluate(mu)
        scale = jnp.where(p > 0, jnp.sqrt(P / jnp.where(p > 0, p, 1.0)), 1.0)
        return d[:, None].astype(dtype) * Z * scale.astype(dtype), mu

    # Bracket: p(mu) <= tr(R^H T0 R) / mu^2 and p(mu) <= tr(R^H R) / (4 mu).
    tRTR = jnp.maximum(jnp.real(jnp.sum(jnp.conj(r)[:, None] * T0 * r[None, :], (0, 1))), 0.0)
    tRR = jnp.sum(C.abs2(r), axis=0)
    tiny = jnp.finfo(P.dtype).tiny
    hi = jnp.minimum(jnp.sqrt(tRTR / P), tRR / (4 * P)) * (1 + 1e-6) + tiny
    lo = jnp.zeros_like(hi)
    mu = jnp.where((mu0 > 0) & (mu0 < hi), mu0, hi)
    rtol = 1e-11 if jnp.finfo(P.dtype).bits > 32 else 1e-5
    phi = lambda p: 1 / jnp.sqrt(jnp.maximum(p, tiny)) - 1 / jnp.sqrt(P)  # increasing, nearly linear in mu

    def cond(c):
        return (c[0] < newton_steps) & ~jnp.all(c[-1])

    def body(c):
        i, lo, hi, mu, mu_prev, f_prev, done = c
        p, _ = evaluate(mu)
        f = phi(p)
        feasible = p <= P
        lo, hi = jnp.where(feasible, lo, mu), jnp.where(feasible, mu, hi)
        secant = mu - f * (mu - mu_prev) / jnp.where(f != f_prev, f - f_prev, 1.0)
        inside = (i > 0) & (secant > lo) & (secant < hi) & jnp.isfinite(secant) & (f != f_prev)
        # Fallback: geometric bisection once a lower bound is known, else a decade down.
        fallback = jnp.where(lo > 0, jnp.sqrt(lo * hi), 0.1 * hi)
        done = done | (jnp.abs(p - P) <= rtol * P) | (hi - lo <= rtol * hi)
        new = jnp.where(done, mu, jnp.where(inside, secant, fallback))
        return i + 1, lo, hi, new, mu, f, done

    z = jnp.zeros_like(mu)
    init = (jnp.zeros((), jnp.int32), lo, hi, mu, z, z, jnp.zeros(mu.shape, bool))
    _, lo, hi, mu, _, _, _ = lax.while_loop(cond, body, init)
    p, Z = evaluate(mu)
    # Constraint active (mu > 0, as a point with p > P was seen): put the beams exactly on the sphere.
    on_sphere = ((lo > 0) | (p > P)) & (p > 0)
    scale = jnp.where(on_sphere, jnp.sqrt(P / jnp.where(p > 0, p, 1.0)), 1.0)
    return d[:, None].astype(dtype) * Z * scale.astype(dtype), jnp.where(on_sphere, mu, 0.0)
