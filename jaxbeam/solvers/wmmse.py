r"""Batched, jitted WMMSE for the weighted sum rate under the total power constraint (3b).

WMMSE (Shi, Razaviyayn, Luo, He, IEEE TSP 2011) maximises :math:`\sum_k \alpha_k R_k` (eq. 2 rates)
by block-coordinate descent on an equivalent weighted-MSE problem. With the MMSE receivers
:math:`u_k = h_k^H w_k / (\sum_i |h_k^H w_i|^2 + \sigma_k^2)` and MSE weights
:math:`v_k = 1 + \mathrm{SINR}_k`, the beams are

.. math::
    w_k = \alpha_k u_k v_k \Big(\sum_i \alpha_i v_i |u_i|^2 h_i h_i^H + \mu I_N\Big)^{-1} h_k ,

with the power multiplier :math:`\mu \ge 0` chosen so that :math:`\|W\|_F^2 \le P` with complementary
slackness. Each iteration never decreases the weighted sum rate.

The N x N inverse is never formed. With :math:`c_i = \alpha_i v_i |u_i|^2`, :math:`D = \mathrm{diag}(\sqrt{c})`
and the push-through identity, the beams are :math:`W = Y^T H`, :math:`Y = D (D G D + \mu I_K)^{-1} R`,
:math:`G = H^* H^T` (the K x K Gram matrix) and :math:`R = \mathrm{diag}(\sqrt{\alpha_k v_k}\, u_k / |u_k|)`.

Two ways to meet the power budget (``multiplier=``):

* ``"closed"`` (default): the normalised WMMSE of Christensen, Agarwal, de Carvalho and Cioffi (IEEE
  TWC 2008). Writing :math:`W = \sqrt{P / \|\tilde W\|_F^2}\,\tilde W` and moving the scale into the
  receivers turns the constraint into a noise term :math:`|u_k|^2 \|\tilde W\|_F^2 / P`; the exact
  minimiser over :math:`\tilde W` is the beam above with the closed-form
  :math:`\mu = \sigma^2 \sum_i c_i / P`, then scaled onto the sphere. Still exact block-coordinate
  descent (monotone), with WMMSE's fixed points, and one K x K inverse per iteration.
* ``"search"``: Shi et al.'s update as written; :math:`\mathrm{tr}(Y^H G Y)` is decreasing in
  :math:`\mu`, so :math:`\mu` is found per sample by a safeguarded secant search, one K x K inverse
  per step, and the beams are scaled onto the sphere when the constraint is active.

The K x K inverses are in-place Gauss-Jordan eliminations in plain XLA
(:func:`jaxbeam.linalg.gauss_jordan_inverse_bm`), laid out with the batch on the minor axis.

The solver follows the optax-like split ``wmmse_init`` / ``wmmse_step`` / ``wmmse`` (one
``lax.while_loop`` until every sample has converged or ``max_iter``; converged samples are frozen).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from jaxbeam.linalg import gauss_jordan_inverse_bm, hpd_solve_batch_minor
from jaxbeam.solvers import _common as C


class WMMSEState(NamedTuple):
    """State of the WMMSE iteration (all arrays share the leading batch shape ``...``).

    Attributes:
      coef: complex ``(..., K, K)`` span coefficients ``Y``; the beams are ``W = Y^T (H / sigma)``
        (see :func:`wmmse_beams`).
      utility: float ``(...,)`` weighted sum rate ``sum_k alpha_k R_k`` of ``coef`` [bit/s/Hz].
      iteration: int32 ``(...,)`` iterations taken by each sample.
      converged: bool ``(...,)`` whether the relative utility change fell below ``tol``.
      mu: float ``(...,)`` the last power multiplier (warm start of the next search).
    """

    coef: jax.Array
    utility: jax.Array
    iteration: jax.Array
    converged: jax.Array
    mu: jax.Array


def _newton_steps(dtype) -> int:
    """Cap on multiplier-search steps (most samples stop after 2-5 Newton steps)."""
    return 100 if jnp.finfo(dtype).bits > 32 else 60


def rzf_coef(Gm, P, mask_f):
    """Span coefficients of the RZF / LMMSE beams (equal power ``P / K_active`` per user)."""
    K = Gm.shape[-1]
    k_act = jnp.maximum(jnp.sum(mask_f, axis=-1), 1.0)
    alpha = k_act / P  # K sigma^2 / P with unit (normalised) noise
    diag = jnp.where(mask_f > 0, alpha[..., None], 1.0)
    A = jnp.conj(Gm) + jnp.eye(K, dtype=Gm.dtype) * diag[..., None].astype(Gm.dtype)
    Y = jnp.swapaxes(hpd_solve_batch_minor(A, jnp.broadcast_to(jnp.eye(K, dtype=Gm.dtype), A.shape)), -1, -2)
    Y = Y * mask_f[..., None, :]
    norms = jnp.real(jnp.diagonal(C.bmm(C.mh(Y), C.bmm(Gm, Y)), axis1=-2, axis2=-1))  # ||w_k||^2
    scale = jnp.where(norms > 0, jnp.sqrt((P / k_act)[..., None] / jnp.where(norms > 0, norms, 1.0)), 0.0)
    return Y * scale[..., None, :].astype(Y.dtype)


MULTIPLIERS = ("closed", "search")


def mmse_update(Y, Gm, P, weights, mask_f, mu0, *, newton_steps: int, multiplier: str = "closed"):
    """One WMMSE beam update (receivers, MSE weights, then beams on the power sphere).

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

    Returns the new coefficients and the multiplier.
    """
    _check_multiplier(multiplier)
    K = Gm.shape[-1]
    dtype = Gm.dtype
    G = C.bmm(Gm, Y)  # G[k, i] = h_k^H w_i
    G2 = C.abs2(G)
    gkk = jnp.diagonal(G, axis1=-2, axis2=-1)
    total = jnp.sum(G2, axis=-1) + 1.0  # received power + unit noise
    u = gkk / total
    sig = C.abs2(gkk)
    v = total / jnp.maximum(total - sig, jnp.finfo(total.dtype).tiny)  # 1 / MSE = 1 + SINR
    au = jnp.abs(u)
    active = (weights > 0) & (au > 0)
    c = jnp.where(active, weights * v * au**2, 0.0)
    d = jnp.sqrt(c)
    phase = jnp.where(active, u / jnp.where(active, au, 1.0), 0.0)
    r = jnp.where(active, jnp.sqrt(weights * v), 0.0) * phase  # (..., K)
    T0 = d[..., :, None] * Gm * d[..., None, :]
    eye = jnp.eye(K, dtype=dtype)
    T = T0 + eye * jnp.where(active, 0.0, 1.0)[..., None].astype(dtype)

    # The multiplier search runs in the batch-minor layout (K, K, batch): every step of the K x K
    # elimination is then one long vectorised loop over the batch (on CPU 2-3x faster than the
    # (batch, K, K) layout, whose minor axis is only K long).
    bshape = Gm.shape[:-2]
    to_bm = lambda x: jnp.moveaxis(x.reshape((-1,) + x.shape[len(bshape) :]), 0, -1)
    T_bm, r_bm = to_bm(T), to_bm(r)  # (K, K, B), (K, B)
    eye_bm = jnp.eye(K, dtype=dtype)[:, :, None]

    def evaluate(mu):
        inv = gauss_jordan_inverse_bm(T_bm + eye_bm * to_bm(mu).astype(dtype))
        Z = inv * r_bm[None]  # inv @ diag(r)
        # T0 Z = R - mu Z (as (T + mu I) inv = I and the inactive rows of Z are zero), so
        # p = tr(Z^H T0 Z) = Re tr(Z^H R) - mu ||Z||^2 needs no matrix product (products after the
        # elimination make XLA CPU about 10x slower here).
        zdiag = jnp.diagonal(Z, axis1=0, axis2=1).T  # (K, B)
        p = jnp.sum(jnp.real(jnp.conj(zdiag) * r_bm), 0) - to_bm(mu) * jnp.sum(C.abs2(Z), (0, 1))
        return p.reshape(bshape), Z

    if multiplier == "closed":
        mu = jnp.sum(c, axis=-1) / P
        p, Z = evaluate(mu)
        Z = jnp.moveaxis(Z, -1, 0).reshape(bshape + (K, K))
        scale = jnp.where(p > 0, jnp.sqrt(P / jnp.where(p > 0, p, 1.0)), 1.0)
        return (d[..., :, None].astype(dtype) * Z) * scale[..., None, None].astype(dtype), mu

    # Bracket: p(mu) <= tr(R^H T0 R) / mu^2 and p(mu) <= tr(R^H R) / (4 mu).
    tRTR = jnp.maximum(jnp.real(jnp.sum(jnp.conj(r)[..., :, None] * T0 * r[..., None, :], (-2, -1))), 0.0)
    tRR = jnp.sum(C.abs2(r), axis=-1)
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
    Z = jnp.moveaxis(Z, -1, 0).reshape(bshape + (K, K))
    Ynew = d[..., :, None].astype(dtype) * Z
    # Constraint active (mu > 0, as a point with p > P was seen): put the beams exactly on the sphere.
    on_sphere = ((lo > 0) | (p > P)) & (p > 0)
    scale = jnp.where(on_sphere, jnp.sqrt(P / jnp.where(p > 0, p, 1.0)), 1.0)
    return Ynew * scale[..., None, None].astype(dtype), jnp.where(on_sphere, mu, 0.0)


def _check_multiplier(multiplier):
    if multiplier not in MULTIPLIERS:
        raise ValueError(f"multiplier must be one of {MULTIPLIERS}; got {multiplier!r}")
    return multiplier


def _wsr(Y, Gm, weights, mask_f):
    return jnp.sum(weights * C.rates_of(Y, Gm, mask_f), axis=-1)


def _init(Hn, Gm, P, weights, mask_f):
    Y = rzf_coef(Gm, P, mask_f)
    batch = P.shape
    return WMMSEState(
        coef=Y,
        utility=_wsr(Y, Gm, weights, mask_f),
        iteration=jnp.zeros(batch, jnp.int32),
        converged=jnp.zeros(batch, bool),
        mu=jnp.zeros(batch, P.dtype),
    )


def _step(state, Gm, P, weights, mask_f, tol, newton_steps, multiplier):
    Y, mu = mmse_update(state.coef, Gm, P, weights, mask_f, state.mu, newton_steps=newton_steps, multiplier=multiplier)
    U = _wsr(Y, Gm, weights, mask_f)
    done = state.converged
    conv = jnp.abs(U - state.utility) <= tol * jnp.maximum(jnp.abs(state.utility), jnp.finfo(U.dtype).tiny)
    return WMMSEState(
        coef=jnp.where(done[..., None, None], state.coef, Y),
        utility=jnp.where(done, state.utility, U),
        iteration=state.iteration + jnp.where(done, 0, 1).astype(jnp.int32),
        converged=done | conv,
        mu=jnp.where(done, state.mu, mu),
    )


def wmmse_init(
    H: ArrayLike, P: ArrayLike, sigma2: ArrayLike = 0.1, *, weights=None, mask: ArrayLike | None = None
) -> WMMSEState:
    r"""Initial WMMSE state: the RZF / LMMSE beams (:func:`jaxbeam.rzf`) at full power.

    Args:
      H: complex ``(..., K, N)`` channels.
      P: power budget [W], scalar or per sample ``(...,)``.
      sigma2: noise power [W], scalar, per sample ``(...,)`` or per user ``(..., K)``.
      weights: optional rate weights ``alpha_k >= 0``, ``(..., K)``; default all ones (sum rate).
      mask: optional bool ``(..., K)``, True for present users.

    Returns:
      :class:`WMMSEState`.
    """
    Hn, P, mask_f, weights = C.prepare(H, P, sigma2, mask, weights)
    return _init(Hn, C.gram(Hn), P, weights, mask_f)


def wmmse_step(
    state: WMMSEState,
    H: ArrayLike,
    P: ArrayLike,
    sigma2: ArrayLike = 0.1,
    *,
    weights=None,
    mask: ArrayLike | None = None,
    tol: float = 1e-4,
    multiplier: str = "closed",
) -> WMMSEState:
    r"""One WMMSE iteration (receivers, weights, beams); samples already converged are left unchanged.

    Args: as :func:`wmmse_init`, plus the state, ``tol`` (relative utility change that marks a sample
    as converged) and ``multiplier`` (as in :func:`wmmse`).

    Returns:
      the next :class:`WMMSEState`.
    """
    Hn, P, mask_f, weights = C.prepare(H, P, sigma2, mask, weights)
    return _step(state, C.gram(Hn), P, weights, mask_f, tol, _newton_steps(P.dtype), _check_multiplier(multiplier))


def wmmse_beams(state: WMMSEState, H: ArrayLike, sigma2: ArrayLike = 0.1, *, mask: ArrayLike | None = None):
    """The beamformers ``W`` (complex ``(..., K, N)``) of a :class:`WMMSEState`."""
    H = jnp.asarray(H)
    Hn, _, _, _ = C.prepare(H, jnp.ones(H.shape[:-2], H.real.dtype), sigma2, mask)
    return C.beams(state.coef, Hn)


def wmmse(
    H: ArrayLike,
    P: ArrayLike,
    sigma2: ArrayLike = 0.1,
    weights: ArrayLike | None = None,
    tol: float = 1e-4,
    max_iter: int = 500,
    mask: ArrayLike | None = None,
    *,
    multiplier: str = "closed",
    return_info: bool = False,
):
    r"""Weighted sum-rate maximisation by WMMSE, batched over any leading shape (Sec. III, eqs. 2-3).

    .. math::
        \max_W \sum_k \alpha_k \log_2\!\Big(1 + \frac{|h_k^H w_k|^2}{\sum_{i\ne k} |h_k^H w_i|^2
        + \sigma_k^2}\Big) \quad \text{s.t.} \quad \|W\|_F^2 \le P

    Starts from RZF and iterates until every sample's relative change of the weighted sum rate is at
    most ``tol`` (the paper's convergence accuracy 1e-4) or ``max_iter``; converged samples are frozen
    while the rest continue, inside one ``lax.while_loop``. jit-compatible (``tol``, ``max_iter``,
    ``return_info`` static).

    Args:
      H: complex ``(..., K, N)`` channels.
      P: power budget [W] (> 0), scalar or per sample ``(...,)``.
      sigma2: noise power [W], scalar, per sample ``(...,)`` or per user ``(..., K)``.
      weights: optional rate weights ``(..., K)`` (default: sum rate).
      tol: relative utility change that ends a sample's iteration.
      max_iter: iteration cap.
      mask: optional bool ``(..., K)``; absent users get zero beams and do not count.
      multiplier: how each beam update meets the power budget: ``"closed"`` (default; the normalised
        WMMSE of Christensen et al. 2008: closed-form multiplier, beams scaled onto the sphere, one
        K x K inverse per iteration) or ``"search"`` (Shi et al.'s update with the multiplier found to
        float round-off by a safeguarded secant search, several inverses per iteration). Both never
        decrease the utility and share their fixed points; see :func:`mmse_update`.
      return_info: also return ``{"utility": (...,), "iterations": (...,), "converged": (...,)}``
        (weighted sum rate in bit/s/Hz, int32, bool).

    Returns:
      complex ``(..., K, N)`` beamformers with ``||W||_F^2 <= P`` (``= P`` up to rounding when the
      power constraint is active, which it is for the sum rate); and the info dict if requested.
    """
    if not tol > 0:
        raise ValueError(f"tol must be > 0; got {tol!r}")
    if int(max_iter) < 0:
        raise ValueError(f"max_iter must be >= 0; got {max_iter!r}")
    _check_multiplier(multiplier)
    Hn, P, mask_f, weights = C.prepare(H, P, sigma2, mask, weights)
    Gm = C.gram(Hn)
    steps = _newton_steps(P.dtype)
    state = _init(Hn, Gm, P, weights, mask_f)
    batch = P.shape
    flat = lambda x: x.reshape((-1,) + x.shape[len(batch) :])
    args = jax.tree.map(flat, (Gm, P, weights, mask_f))
    step = lambda s, a: _step(s, *a, tol, steps, multiplier)
    state = C.compacting_while(step, jax.tree.map(flat, state), args, int(max_iter))
    state = jax.tree.map(lambda x: x.reshape(batch + x.shape[1:]), state)
    W = C.beams(state.coef, Hn)
    if return_info:
        return W, {"utility": state.utility, "iterations": state.iteration, "converged": state.converged}
    return W
