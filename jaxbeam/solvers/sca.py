r"""Successive convex approximation (SCA) for SR, MR and EE with projected-gradient subproblems.

Each outer iteration replaces every rate of eq. (2) by a concave minorant that is tight (same value and
gradient) at the current beams :math:`W^{(t)}`. With :math:`a_k = h_k^H w_k^{(t)}` and
:math:`y_k = \sum_{i \ne k} |h_k^H w_i^{(t)}|^2 + \sigma_k^2`, convexity of :math:`|a|^2 / y` gives

.. math::
    \mathrm{SINR}_k(W) \ge q_k(W) = \frac{2\,\mathrm{Re}\{a_k^* h_k^H w_k\}}{y_k}
        - \frac{|a_k|^2}{y_k^2}\Big(\sum_{i \ne k} |h_k^H w_i|^2 + \sigma_k^2\Big),
    \qquad \tilde R_k(W) = \log_2(1 + q_k(W)) \le R_k(W),

concave in :math:`W` (a concave increasing function of a concave quadratic). The convex subproblem
:math:`\max_{\|W\|_F^2 \le P} \tilde U(W)` is solved approximately by projected gradient ascent onto the
power ball (:func:`jaxbeam.project_power`) with a per-sample step size found by backtracking
(sufficient-ascent test, one trial per step, step grown by 1.5 after a success and halved after a
failure; each outer iteration starts again from at least the initial step, so failed trials of one
subproblem do not starve the next). Because the surrogate is a tight minorant, any surrogate ascent
is a true ascent; the solver also keeps the best iterate by the true utility, so it never returns
less than its start.

Utilities:

* ``"sr"``: :math:`\tilde U = \sum_k \tilde R_k`; starts from :func:`jaxbeam.wmmse` and refines it.
* ``"mr"``: the non-smooth :math:`\min_k` is replaced by the smoothed minimum
  :math:`-\beta^{-1} \log \sum_k e^{-\beta \tilde R_k}` (concave, :math:`\le \min_k \tilde R_k`, within
  :math:`\log(K)/\beta` of it) with a continuation schedule :math:`\beta_t = \min(\beta_0 g^t, \beta_{max})`:
  small :math:`\beta` early gives smooth, well-conditioned subproblems far from the optimum and large
  :math:`\beta` late makes the surrogate's maximiser approach the max-min point. Chosen over an epigraph
  form because the epigraph constraints :math:`\tilde R_k \ge t` would need a constrained inner solver,
  while the smoothed form keeps the feasible set the power ball, whose projection is a scaling.
  Starts from RZF_BAL: the RZF directions with the max-min powers of :func:`jaxbeam.maxmin_power`.
* ``"ee"``: Dinkelbach's method merged with SCA: with :math:`\lambda_t = \mathrm{EE}(W^{(t)})` the
  surrogate is :math:`\sum_k \tilde R_k - \lambda_t (\|W\|_F^2 + P_c)`, zero at :math:`W^{(t)}`, so any
  positive value certifies :math:`\mathrm{EE} > \lambda_t` (monotone). The power term lets the iterates
  leave the sphere: the power level is searched, not fixed at ``P``. Starts from the best (by EE) of
  WMMSE run at each of the power levels ``P j / 50``, ``j = 1..50`` (a line search over the budget:
  which users WMMSE keeps on changes with the level, so the levels are dense), then polishes it.

Per-antenna budgets (``power="antenna"``): the feasible set is ``sum_k |W[k, n]|^2 <= P / N`` for every
antenna n, a product of balls whose projection scales each column on its own
(:func:`jaxbeam.project_antenna_power`); the surrogates are unchanged (EE's power term is still the total
transmit power). The start is the total-power start above scaled as a whole until its fullest antenna meets
its budget (:func:`jaxbeam.scale_antenna_power`), so the result is never below that scaled precoder.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from jaxbeam.core import _checks
from jaxbeam.core._jit import public
from jaxbeam.core.power import POWER_CONSTRAINTS, maxmin_power, scale_antenna_power
from jaxbeam.solvers import _common as C
from jaxbeam.solvers._common import check_count, check_tol
from jaxbeam.solvers._wmmse_kernel import rzf_coef
from jaxbeam.solvers._wmmse_total import wmmse_total as wmmse

UTILITIES = ("sr", "mr", "ee")
_EE_LEVELS = 50  # EE start: WMMSE at the power levels P j / 50, j = 1..50
_LN2 = 0.6931471805599453


def _rates(G):
    """Exact rates [bit/s/Hz] from gains ``G[k, i] = h~_k^H w_i`` (unit noise)."""
    G2 = C.abs2(G)
    s = jnp.diagonal(G2, axis1=-2, axis2=-1)
    return jnp.log1p(s / (jnp.sum(G2, -1) - s + 1.0)) / _LN2


def _true_utility(name, Hn, W, mask_f, Pc):
    r = _rates(C.gains(Hn, W)) * mask_f
    if name == "sr":
        return jnp.sum(r, -1)
    if name == "mr":
        return C.min_over_present(r, mask_f)
    return jnp.sum(r, -1) / (jnp.sum(C.abs2(W), (-2, -1)) + Pc)


class _Lin(NamedTuple):
    """Linearisation point of the rate minorants: ``a0 = h_k^H w_k``, ``y0`` interference + noise."""

    a0: jax.Array
    y0: jax.Array
    lam: jax.Array  # Dinkelbach multiplier (EE) or unused
    beta: jax.Array  # smoothing (MR) or unused


def _linearise(name, Hn, W, mask_f, Pc, beta):
    G = C.gains(Hn, W)
    G2 = C.abs2(G)
    a0 = jnp.diagonal(G, axis1=-2, axis2=-1)
    y0 = jnp.sum(G2, -1) - C.abs2(a0) + 1.0
    lam = _true_utility("ee", Hn, W, mask_f, Pc) if name == "ee" else jnp.zeros(a0.shape[:-1], y0.dtype)
    return _Lin(a0, y0, lam, beta)


def _surrogate(name, Hn, W, lin, mask_f):
    """Concave surrogate value per sample, and whether it is finite (1 + q_k > 0 for all users)."""
    G = C.gains(Hn, W)
    G2 = C.abs2(G)
    gkk = jnp.diagonal(G, axis1=-2, axis2=-1)
    interf = jnp.sum(G2, -1) - C.abs2(gkk) + 1.0
    q = (2 * jnp.real(jnp.conj(lin.a0) * gkk) - C.abs2(lin.a0) * interf / lin.y0) / lin.y0
    arg = 1.0 + q
    ok = jnp.all((arg > 0) | (mask_f == 0), -1)
    r = jnp.log(jnp.where(arg > 0, arg, 1.0)) / _LN2 * mask_f
    if name == "sr":
        val = jnp.sum(r, -1)
    elif name == "mr":
        b = lin.beta[..., None]
        z = jnp.where(mask_f > 0, -b * r, -jnp.inf)
        zmax = jnp.max(z, -1, keepdims=True)
        val = -(zmax[..., 0] + jnp.log(jnp.sum(jnp.exp(z - zmax), -1))) / lin.beta
    else:
        val = jnp.sum(r, -1) - lin.lam * jnp.sum(C.abs2(W), (-2, -1))
    return jnp.where(ok, val, -jnp.inf), ok


def _project(W, P, mask_f, per_antenna=False):
    """Projection onto ``||W||_F^2 <= P`` (a scaling), or onto ``sum_k |W[k, n]|^2 <= P / N`` (each column)."""
    W = W * mask_f[..., None].astype(W.dtype)
    if per_antenna:
        Pn = (P / W.shape[-1])[..., None]
        p = jnp.sum(C.abs2(W), -2)
        return W * jnp.sqrt(Pn / jnp.maximum(p, Pn))[..., None, :].astype(W.dtype)
    p = jnp.sum(C.abs2(W), (-2, -1))
    return W * jnp.sqrt(P / jnp.maximum(p, P))[..., None, None].astype(W.dtype)


class SCAState(NamedTuple):
    """Outer SCA state. ``W`` current beams, ``best_W``/``best`` the best by the true utility, ``step``
    the per-sample projected-gradient step size, ``beta`` the MR smoothing, ``ref`` the best utility
    when the current stall began and ``stall`` the outer iterations since (see :func:`sca`),
    ``iteration``/``converged``."""

    W: jax.Array
    best_W: jax.Array
    best: jax.Array
    step: jax.Array
    beta: jax.Array
    ref: jax.Array
    stall: jax.Array
    iteration: jax.Array
    converged: jax.Array


def _inner(name, Hn, W, lin, P, mask_f, step, inner_steps, per_antenna=False):
    """Projected-gradient ascent with one-trial backtracking on the surrogate, ``inner_steps`` steps."""

    def f(W):
        v, _ = _surrogate(name, Hn, W, lin, mask_f)
        return jnp.sum(jnp.where(jnp.isfinite(v), v, 0.0)), v

    grad_f = jax.grad(f, has_aux=True)

    def body(_, c):
        W, val, step = c
        g, _ = grad_f(W)
        g = jnp.conj(g)  # JAX returns the conjugate of the ascent direction for real f(W), W complex
        Wn = _project(W + step[..., None, None].astype(W.dtype) * g, P, mask_f, per_antenna)
        vn, okn = _surrogate(name, Hn, Wn, lin, mask_f)
        d = Wn - W
        model = val + jnp.sum(jnp.real(jnp.conj(g) * d), (-2, -1)) - jnp.sum(C.abs2(d), (-2, -1)) / (2 * step)
        accept = okn & (vn >= model)
        W = jnp.where(accept[..., None, None], Wn, W)
        val = jnp.where(accept, vn, val)
        step = jnp.where(accept, step * 1.5, step * 0.5)
        return W, val, step

    val0, _ = _surrogate(name, Hn, W, lin, mask_f)
    W, _, step = lax.fori_loop(0, inner_steps, body, (W, val0, step))
    return W, step


def _initial_beams(name, Hn, P, sigma2_unit, mask_f, Pc, tol, wmmse_iters, ee_levels):
    """Start points: WMMSE (SR), RZF (MR), WMMSE scaled to the best EE on a power grid (EE)."""
    Gm = C.gram(Hn)
    if name == "mr":  # RZF directions with the max-min (SINR-balancing) powers: RZF_BAL
        W = C.beams(rzf_coef(Gm, P, mask_f), Hn)
        return maxmin_power(Hn, W, P, 1.0, mask=mask_f > 0, num_iter=50)
    mask = mask_f > 0
    if name == "sr":
        return wmmse(Hn, P, sigma2_unit, tol=tol, max_iter=wmmse_iters, mask=mask)
    # EE: WMMSE at each power level of a grid (as one batch), the best EE per sample.
    grid = jnp.arange(1, ee_levels + 1, dtype=P.real.dtype) / ee_levels
    L = grid.shape[0]
    lead = lambda x: jnp.broadcast_to(x[None], (L,) + x.shape)
    Pg = grid.reshape((L,) + (1,) * P.ndim) * P[None]
    Ws = wmmse(lead(Hn), Pg, sigma2_unit, tol=tol, max_iter=wmmse_iters, mask=lead(mask))
    ee = _true_utility("ee", lead(Hn), Ws, lead(mask_f), lead(Pc))
    best = jnp.argmax(jnp.where(jnp.isfinite(ee), ee, -jnp.inf), axis=0)
    return jnp.take_along_axis(Ws, best[None, ..., None, None], axis=0)[0]


@public(
    static=(
        "utility",
        "tol",
        "max_iter",
        "inner_steps",
        "patience",
        "beta0",
        "beta_growth",
        "beta_max",
        "wmmse_iters",
        "ee_levels",
        "power",
        "return_info",
    )
)
def sca(
    H: ArrayLike,
    P: ArrayLike,
    sigma2: ArrayLike = 0.1,
    utility: str = "sr",
    Pc: ArrayLike = 0.5,
    tol: float = 1e-4,
    mask: ArrayLike | None = None,
    *,
    init: ArrayLike | None = None,
    max_iter: int | None = None,
    inner_steps: int = 10,
    patience: int = 5,
    beta0: float = 4.0,
    beta_growth: float = 1.5,
    beta_max: float = 1000.0,
    wmmse_iters: int = 500,
    ee_levels: int = _EE_LEVELS,
    power: str = "total",
    return_info: bool = False,
):
    r"""SCA beamforming for the SR, MR or EE utility of problem (3), batched and jittable.

    See the module docstring for the surrogate, the MR smoothing schedule and the Dinkelbach step.
    Each outer iteration starts its projected-gradient steps from ``max(2 s, s_0)`` (``s`` the step its
    predecessor ended with, ``s_0`` the initial step), so a step shrunk by failed trials recovers.
    A sample stops when its best true utility has improved by at most ``tol`` (relative) over
    ``patience`` consecutive outer iterations (and, for MR, the smoothing has reached ``beta_max``), or
    after ``max_iter`` outer iterations; stopped samples are frozen and compacted away.

    Args:
      H: complex ``(..., K, N)`` channels.
      P: power budget [W] (> 0), scalar or per sample ``(...,)``.
      sigma2: noise power [W] (> 0), broadcastable against the per-user shape ``(..., K)``.
      utility: ``"sr"``, ``"mr"`` or ``"ee"``.
      Pc: circuit power [W] (>= 0; used by EE only, checked for every utility), scalar or per sample.
      tol: relative improvement below which an outer iteration counts as a stall, in (0, 1).
      mask: optional bool ``(..., K)``; absent users get zero beams and do not count.
      init: optional complex ``(..., K, N)`` start beams (projected onto the feasible set); default: WMMSE
        (SR), RZF directions with max-min powers (MR), WMMSE on the best of a power grid (EE), each scaled
        into the per-antenna set under ``power="antenna"``.
      max_iter: outer-iteration cap (int >= 1; default 100 for SR/EE, 300 for MR).
      inner_steps: projected-gradient steps per convex subproblem (int >= 1).
      patience: consecutive stalled outer iterations that end a sample (int >= 1).
      beta0, beta_growth, beta_max: the MR smoothing schedule (1 / bit; > 0, >= 1, >= beta0).
      wmmse_iters: iteration cap of the WMMSE start (SR, EE).
      ee_levels: power levels ``P j / ee_levels``, ``j = 1..ee_levels``, of the EE start (int >= 1;
        fewer are faster but coarser: with 25 levels 7 of 1,000 samples at (6, 12), P = 3 ended 0.5-1.6 %
        below the best of WMMSE at 50 levels).
      power: ``"total"`` (``||W||_F^2 <= P``) or ``"antenna"`` (``sum_k |W[k, n]|^2 <= P / N`` for every
        antenna n; module docstring).
      return_info: also return ``{"utility": (...,), "iterations": (...,), "converged": (...,)}``
        (utility 0 where no user is present).

    Returns:
      complex ``(..., K, N)`` beamformers in the feasible set of ``power``; and the info dict if requested.
    """
    if utility not in UTILITIES:
        raise ValueError(f"utility must be one of {UTILITIES}; got {utility!r}")
    _checks.name_in("power", power, POWER_CONSTRAINTS)
    per_antenna = power == "antenna"
    tol = check_tol(tol)
    inner_steps = check_count(inner_steps, "inner_steps", 1)
    patience = check_count(patience, "patience", 1)
    wmmse_iters = check_count(wmmse_iters, "wmmse_iters", 0)
    ee_levels = check_count(ee_levels, "ee_levels", 1)
    if max_iter is None:
        max_iter = 300 if utility == "mr" else 100
    max_iter = check_count(max_iter, "max_iter", 1)
    for name, v, lo in (("beta0", beta0, 0.0), ("beta_growth", beta_growth, 1.0), ("beta_max", beta_max, beta0)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (lo <= v < float("inf")) or v <= 0:
            raise ValueError(f"{name} must be a finite float >= {lo} (and > 0); got {v!r}")
    Hn, P, mask_f, _ = C.prepare(H, P, sigma2, mask)
    batch = P.shape
    Pc = _checks.real_param("Pc", Pc, batch, low=0.0, strict=False, what="circuit power in W")
    Pc = jnp.broadcast_to(Pc.astype(P.dtype), batch)
    if init is None:
        W0 = _initial_beams(utility, Hn, P, jnp.ones((), P.dtype), mask_f, Pc, 1e-4, wmmse_iters, ee_levels)
        if per_antenna:
            W0 = scale_antenna_power(W0, (P / Hn.shape[-1])[..., None], mask=mask_f > 0)
    else:
        init = _checks.complex_kn("init", init)
        _checks.same_shape("H", Hn, "init", init)
        W0 = jnp.broadcast_to(init, Hn.shape).astype(Hn.dtype)
    W0 = _project(jnp.where(jnp.isfinite(W0), W0, 0), P, mask_f, per_antenna)
    U0 = _true_utility(utility, Hn, W0, mask_f, Pc)
    present = jnp.any(mask_f > 0, -1)
    U0 = jnp.where(present, U0, 0.0)
    # Initial step ~ 1 / (curvature of the rates): the channel gains scale like ||h||^2 ~ N / sigma2.
    scale = jnp.sum(C.abs2(Hn), (-2, -1)) / jnp.maximum(jnp.sum(mask_f, -1), 1.0)
    step0 = 0.1 * P / jnp.maximum(scale, 1e-30) / jnp.maximum(jnp.abs(U0), 1e-3)
    beta_init = jnp.full(batch, beta0 if utility == "mr" else 0.0, P.dtype)
    zi = jnp.zeros(batch, jnp.int32)
    state = SCAState(W0, W0, U0, step0, beta_init, U0, zi, zi, ~present)

    def outer(s: SCAState, args) -> SCAState:
        Hn, P, mask_f, Pc, step0 = args
        lin = _linearise(utility, Hn, s.W, mask_f, Pc, s.beta)
        W, step = _inner(utility, Hn, s.W, lin, P, mask_f, jnp.maximum(2 * s.step, step0), inner_steps, per_antenna)
        U = _true_utility(utility, Hn, W, mask_f, Pc)
        improved = U > s.best
        best = jnp.where(improved, U, s.best)
        best_W = jnp.where(improved[..., None, None], W, s.best_W)
        moved = (best - s.ref) > tol * jnp.maximum(jnp.abs(s.ref), jnp.finfo(U.dtype).tiny)
        ref = jnp.where(moved, best, s.ref)
        stall = jnp.where(moved, 0, s.stall + 1).astype(jnp.int32)
        beta = jnp.minimum(s.beta * beta_growth, beta_max)
        conv = (stall >= patience) & ((utility != "mr") | (s.beta >= beta_max))
        done = s.converged
        keep = lambda old, new: jnp.where(done.reshape(done.shape + (1,) * (new.ndim - done.ndim)), old, new)
        return SCAState(
            W=keep(s.W, W),
            best_W=keep(s.best_W, best_W),
            best=keep(s.best, best),
            step=keep(s.step, step),
            beta=keep(s.beta, beta),
            ref=keep(s.ref, ref),
            stall=keep(s.stall, stall),
            iteration=s.iteration + jnp.where(done, 0, 1).astype(jnp.int32),
            converged=done | conv,
        )

    # Flatten the batch and run with compaction of the converged samples (see _common.compacting_while).
    flat = lambda x: x.reshape((-1,) + x.shape[len(batch) :])
    args = jax.tree.map(flat, (Hn, P, mask_f, Pc, step0))
    state = C.compacting_while(outer, jax.tree.map(flat, state), args, max_iter)
    state = jax.tree.map(lambda x: x.reshape(batch + x.shape[1:]), state)
    W = state.best_W
    if return_info:
        return W, {"utility": state.best, "iterations": state.iteration, "converged": state.converged}
    return W
