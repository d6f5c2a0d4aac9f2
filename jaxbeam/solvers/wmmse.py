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

The whole iteration runs "batch-minor": every K x K array is stored ``(K, K, B)`` with the flattened
batch on the fastest axis, so each step is a long vectorised loop over the batch; the K x K inverses
are in-place Gauss-Jordan eliminations in plain XLA (:func:`jaxbeam.linalg.gauss_jordan_inverse_bm`),
and the gains ``Gm Y`` computed for the utility are carried over to the next receiver update.

The solver follows the optax-like split ``wmmse_init`` / ``wmmse_step`` / ``wmmse`` (one
``lax.while_loop`` until every sample has converged or ``max_iter``; converged samples are frozen).
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from jaxbeam.linalg import gauss_jordan_inverse_bm
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
    norms = jnp.sum(jnp.real(jnp.conj(Y) * _bmm_bm(Gm, Y)), axis=0)  # ||w_k||^2, (K, B)
    scale = jnp.where(norms > 0, jnp.sqrt((P / k_act)[None] / jnp.where(norms > 0, norms, 1.0)), 0.0)
    return Y * scale[None].astype(Y.dtype)


def rzf_coef(Gm, P, mask_f):
    """Span coefficients ``(..., K, K)`` of the RZF / LMMSE beams (equal power ``P / K_active`` per user)."""
    batch = Gm.shape[:-2]
    P = jnp.broadcast_to(P, batch)
    nb = len(batch)
    return _from_bm(_rzf_coef_bm(_to_bm(Gm, nb), _to_bm(P, nb), _to_bm(mask_f, nb)), batch)


MULTIPLIERS = ("closed", "search")


def mmse_update_bm(G, Gm, P, weights, mu0, *, newton_steps: int, multiplier: str):
    """One WMMSE beam update in the batch-minor layout.

    Args: the gains ``G = Gm @ Y`` of the current coefficients and ``Gm``, both ``(K, K, B)``; ``P``
    and ``mu0`` ``(B,)``; ``weights`` ``(K, B)`` (zero for absent users).

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
    au = jnp.abs(u)
    active = (weights > 0) & (au > 0)
    c = jnp.where(active, weights * v * au**2, 0.0)
    d = jnp.sqrt(c)
    phase = jnp.where(active, u / jnp.where(active, au, 1.0), 0.0)
    r = jnp.where(active, jnp.sqrt(weights * v), 0.0) * phase  # (K, B)
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


def check_tol(tol, name="tol"):
    """``tol`` must be a finite real number in (0, 1): a relative tolerance."""
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not 0 < tol < 1:
        raise ValueError(f"{name} must be a relative tolerance, a float in (0, 1); got {tol!r}")
    return float(tol)


def check_count(value, name, minimum):
    """``value`` must be a Python int >= ``minimum`` (an iteration or step count)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")
    return int(value)


def _check_multiplier(multiplier):
    if multiplier not in MULTIPLIERS:
        raise ValueError(f"multiplier must be one of {MULTIPLIERS}; got {multiplier!r}")
    return multiplier


STOPS = ("rates", "paper")


class _LoopState(NamedTuple):
    """:class:`WMMSEState` in the batch-minor layout, plus the gains ``Gm @ coef`` of its coefficients
    (computed once per iteration for the utility and reused by the next receiver update), the weighted
    per-user rates ``(K, B)`` and the number of consecutive calm iterations ``(B,)`` (``stop="rates"``)."""

    coef: jax.Array  # (K, K, B)
    gains: jax.Array  # (K, K, B)
    utility: jax.Array  # (B,)
    iteration: jax.Array
    converged: jax.Array
    mu: jax.Array
    rates: jax.Array  # (K, B)
    calm: jax.Array  # (B,) int32


def _user_rates_bm(G, weights):
    """Weighted per-user rates ``alpha_k R_k`` ``(K, B)`` [bit/s/Hz] from the gains ``(K, K, B)``."""
    G2 = C.abs2(G)
    signal = _diag_bm(G2)
    interference = jnp.maximum(jnp.sum(G2, axis=1) - signal, 0.0)
    return weights * jnp.log1p(signal / (interference + 1.0)) / jnp.log(2.0)


def _loop_state(Y, Gm, weights, iteration, converged, mu):
    G = _bmm_bm(Gm, Y)
    r = _user_rates_bm(G, weights)
    return _LoopState(Y, G, jnp.sum(r, axis=0), iteration, converged, mu, r, jnp.zeros(mu.shape, jnp.int32))


def _initial_state(Gm, P, weights, mask_f) -> _LoopState:
    """RZF start (batch-minor)."""
    z = jnp.zeros(P.shape, jnp.int32)
    return _loop_state(_rzf_coef_bm(Gm, P, mask_f), Gm, weights, z, z > 0, jnp.zeros_like(P))


def _step_bm(state: _LoopState, Gm, P, weights, tol, newton_steps, multiplier, stop="paper", window=1) -> _LoopState:
    Y, mu = mmse_update_bm(state.gains, Gm, P, weights, state.mu, newton_steps=newton_steps, multiplier=multiplier)
    G = _bmm_bm(Gm, Y)
    r = _user_rates_bm(G, weights)
    U = jnp.sum(r, axis=0)
    done = state.converged
    scale = jnp.maximum(jnp.abs(state.utility), jnp.finfo(U.dtype).tiny)
    if stop == "paper":
        calm_now = jnp.abs(U - state.utility) <= tol * scale
    else:  # every user's rate moved by at most tol x the mean rate per active user
        k_act = jnp.maximum(jnp.sum(weights > 0, axis=0), 1).astype(U.dtype)
        calm_now = jnp.max(jnp.abs(r - state.rates), axis=0) <= tol * scale / k_act
    calm = jnp.where(calm_now, state.calm + 1, 0).astype(jnp.int32)
    conv = calm >= window
    keep = lambda old, new: jnp.where(done, old, new)
    return _LoopState(
        coef=keep(state.coef, Y),
        gains=keep(state.gains, G),
        utility=keep(state.utility, U),
        iteration=state.iteration + jnp.where(done, 0, 1).astype(jnp.int32),
        converged=done | conv,
        mu=keep(state.mu, mu),
        rates=keep(state.rates, r),
        calm=keep(state.calm, calm),
    )


def _prepare_bm(H, P, sigma2, mask, weights):
    """Validate, normalise and flatten into the batch-minor layout: ``batch, (Gm, P, weights, mask_f)``."""
    Hn, P, mask_f, weights = C.prepare(H, P, sigma2, mask, weights)
    batch = P.shape
    nb = len(batch)
    return Hn, batch, (_to_bm(C.gram(Hn), nb), _to_bm(P, nb), _to_bm(weights, nb), _to_bm(mask_f, nb))


def _to_public(state: _LoopState, batch) -> WMMSEState:
    return WMMSEState(
        *(_from_bm(x, batch) for x in (state.coef, state.utility, state.iteration, state.converged, state.mu))
    )


def _check_stop(stop, window):
    if stop not in STOPS:
        raise ValueError(f"stop must be one of {STOPS}; got {stop!r}")
    if not (isinstance(window, int) and window >= 1):
        raise ValueError(f"window must be an int >= 1; got {window!r}")


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
    _, batch, (Gm, P, weights, mask_f) = _prepare_bm(H, P, sigma2, mask, weights)
    return _to_public(_initial_state(Gm, P, weights, mask_f), batch)


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

    Args: as :func:`wmmse_init`, plus the state, ``tol`` (relative utility change of this iteration that
    marks a sample as converged: the ``stop="paper"`` rule of :func:`wmmse`) and ``multiplier`` (as in
    :func:`wmmse`).

    Returns:
      the next :class:`WMMSEState`.
    """
    tol = check_tol(tol)
    _check_multiplier(multiplier)
    _, batch, (Gm, P, weights, _) = _prepare_bm(H, P, sigma2, mask, weights)
    Y = _to_bm(state.coef, len(batch))
    flat = lambda x: _to_bm(jnp.broadcast_to(x, batch), len(batch))
    G = _bmm_bm(Gm, Y)
    s = _LoopState(Y, G, *(flat(x) for x in state[1:]), _user_rates_bm(G, weights), jnp.zeros(Y.shape[-1:], jnp.int32))
    s = _step_bm(s, Gm, P, weights, tol, _newton_steps(P.dtype), multiplier)
    return _to_public(s, batch)


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
    stop: str = "rates",
    window: int = 3,
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
      tol: relative tolerance of the stopping test, in (0, 1).
      max_iter: iteration cap (int >= 0).
      mask: optional bool ``(..., K)``; absent users get zero beams and do not count.
      multiplier: how each beam update meets the power budget: ``"closed"`` (default; the normalised
        WMMSE of Christensen et al. 2008: closed-form multiplier, beams scaled onto the sphere, one
        K x K inverse per iteration) or ``"search"`` (Shi et al.'s update with the multiplier found to
        float round-off by a safeguarded secant search, several inverses per iteration). Both never
        decrease the utility and share their fixed points; see :func:`mmse_update_bm`.
      stop: the stopping test, ``"rates"`` (default) or ``"paper"`` (see above).
      window: consecutive calm iterations ``"rates"`` requires (int >= 1; ``"paper"`` uses 1).
      return_info: also return ``{"utility": (...,), "iterations": (...,), "converged": (...,)}``
        (weighted sum rate in bit/s/Hz, int32, bool).

    Returns:
      complex ``(..., K, N)`` beamformers with ``||W||_F^2 <= P`` (``= P`` up to rounding when the
      power constraint is active, which it is for the sum rate); and the info dict if requested.
    """
    tol = check_tol(tol)
    max_iter = check_count(max_iter, "max_iter", 0)
    _check_multiplier(multiplier)
    _check_stop(stop, window)
    window = window if stop == "rates" else 1
    Hn, batch, (Gm, P, weights, mask_f) = _prepare_bm(H, P, sigma2, mask, weights)
    steps = _newton_steps(P.dtype)
    step = lambda s, a: _step_bm(s, *a, tol, steps, multiplier, stop, window)
    state = C.compacting_while(step, _initial_state(Gm, P, weights, mask_f), (Gm, P, weights), int(max_iter), axis=-1)
    state = _to_public(state, batch)
    W = C.beams(state.coef, Hn)
    if return_info:
        return W, {"utility": state.utility, "iterations": state.iteration, "converged": state.converged}
    return W
