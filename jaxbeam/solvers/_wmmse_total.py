r"""Batched, jitted WMMSE for the weighted sum rate under the total power constraint (3b): the total-power case
of the public :func:`jaxbeam.wmmse` (:mod:`jaxbeam.solvers.wmmse`), and its ``wmmse_init`` / ``wmmse_step``.

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
are in-place Gauss-Jordan eliminations in plain XLA (:func:`jaxbeam.core.linalg.gauss_jordan_inverse_bm`),
and the gains ``Gm Y`` computed for the utility are carried over to the next receiver update.

The solver follows the optax-like split ``wmmse_init`` / ``wmmse_step`` / ``wmmse_total`` (one
``lax.while_loop`` until every sample has converged or ``max_iter``; converged samples are frozen).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxbeam.core._jit import public
from jaxbeam.core.power import project_power
from jaxbeam.solvers import _common as C
from jaxbeam.solvers._common import check_count, check_tol
from jaxbeam.solvers._wmmse_kernel import (
    MULTIPLIERS,
    _bmm_bm,
    _diag_bm,
    _from_bm,
    _newton_steps,
    _rzf_coef_bm,
    _to_bm,
    mmse_update_bm,
)


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


@public()
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


@public(static=("tol", "multiplier"))
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


@public()
def wmmse_beams(state: WMMSEState, H: ArrayLike, sigma2: ArrayLike = 0.1, *, mask: ArrayLike | None = None):
    """The beamformers ``W`` (complex ``(..., K, N)``) of a :class:`WMMSEState`."""
    H = jnp.asarray(H)
    Hn, _, _, _ = C.prepare(H, jnp.ones(H.shape[:-2], H.real.dtype), sigma2, mask)
    return C.beams(state.coef, Hn)


@public(static=("tol", "max_iter", "multiplier", "stop", "window", "return_info"))
def wmmse_total(
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
    """The total-power case of :func:`jaxbeam.wmmse` (its docstring has the arguments); ``tol`` in (0, 1)."""
    tol = check_tol(tol)
    max_iter = check_count(max_iter, "max_iter", 0)
    _check_multiplier(multiplier)
    _check_stop(stop, window)
    window = window if stop == "rates" else 1
    budget = P
    Hn, batch, (Gm, P, weights, mask_f) = _prepare_bm(H, P, sigma2, mask, weights)
    steps = _newton_steps(P.dtype)
    step = lambda s, a: _step_bm(s, *a, tol, steps, multiplier, stop, window)
    state = C.compacting_while(step, _initial_state(Gm, P, weights, mask_f), (Gm, P, weights), int(max_iter), axis=-1)
    state = _to_public(state, batch)
    # A no-op up to rounding, except at a traced sigma2 <= 0 (SNR capped at 1 / eps), where the
    # multiplier's float32 round-off overshot the budget by up to 13 %.
    W = project_power(C.beams(state.coef, Hn), budget)
    if return_info:
        return W, {"utility": state.utility, "iterations": state.iteration, "converged": state.converged}
    return W


@public(static=("iterations", "multiplier"))
def wmmse_fixed(
    H: ArrayLike,
    P: ArrayLike,
    sigma2: ArrayLike = 0.1,
    iterations: int = 5,
    *,
    weights: ArrayLike | None = None,
    mask: ArrayLike | None = None,
    multiplier: str = "closed",
) -> jax.Array:
    r"""WMMSE stopped after exactly ``iterations`` iterations from its RZF start (the ``WMMSE-k`` of the
    speed-quality ladder): one ``fori_loop`` with a fixed trip count, no stopping test and no data-dependent
    loop, the same work for every sample (what an accelerator wants, and what a fair timing needs).

    Equals ``iterations`` calls of :func:`wmmse_step` from :func:`wmmse_init` up to rounding (``wmmse_step`` also
    freezes a sample whose utility stops changing exactly); each iteration is the beam update alone, with no
    utility or stopping test computed, so a budget costs what its iterations cost. ``iterations = 0`` is RZF at
    full power.

    Args:
      H, P, sigma2, weights, mask, multiplier: as :func:`jaxbeam.wmmse`.
      iterations: the budget k (int >= 0).

    Returns:
      complex ``(..., K, N)`` beams with ``||W||_F^2 <= P``.
    """
    iterations = check_count(iterations, "iterations", 0)
    _check_multiplier(multiplier)
    budget = P
    Hn, batch, (Gm, P, weights, mask_f) = _prepare_bm(H, P, sigma2, mask, weights)
    steps = _newton_steps(P.dtype)

    def step(_, carry):  # the beam update alone: no utility, no stopping test (the cheapest WMMSE iteration)
        Y, mu = carry
        return mmse_update_bm(_bmm_bm(Gm, Y), Gm, P, weights, mu, newton_steps=steps, multiplier=multiplier)

    Y, _ = jax.lax.fori_loop(0, iterations, step, (_rzf_coef_bm(Gm, P, mask_f), jnp.zeros_like(P)))
    return project_power(C.beams(_from_bm(Y, batch), Hn), budget)
