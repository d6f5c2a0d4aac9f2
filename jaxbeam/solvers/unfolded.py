r"""Deep-unfolded WMMSE: ``T`` WMMSE iterations from the RZF start, each with three learned scalars.

Iteration ``t`` of :func:`jaxbeam.wmmse_fixed` (receivers ``u``, MSE weights ``v``, the closed-multiplier beam
update of Christensen et al., then the beams on the power sphere) with three knobs, shared by every user and
sample, so one set of parameters serves any ``K``, ``N`` and mask:

* ``log_mu[t]``: the regulariser of the beam update is ``exp(log_mu[t])`` times WMMSE's closed multiplier
  ``mu = sum_k alpha_k v_k |u_k|^2 / P`` (unit noise; :func:`jaxbeam.solvers._wmmse_kernel.mmse_update_bm`);
* ``log_beta[t]``: the MSE weights enter as ``v_k^{exp(log_beta[t])}`` (> 1 favours the strong users);
* ``gamma[t]``: extrapolation of the span coefficients, ``Y_t = Y^ + gamma[t] (Y^ - Y_{t-1})``, then scaled
  back onto ``||W||_F^2 = P``.

.. math::
    \hat Y = \mathrm{update}(Y_{t-1};\ e^{\lambda_t}\mu,\ v^{e^{\beta_t}}), \qquad
    Y_t = \sqrt{P / p(\tilde Y)}\ \tilde Y,\quad \tilde Y = \hat Y + \gamma_t (\hat Y - Y_{t-1})

with ``p(Y) = ||Y^T H~||_F^2`` the power of the beams ``W = Y^T H~`` (``H~ = H / sigma``). All parameters zero
is WMMSE itself: :func:`unfolded_wmmse` then equals ``jb.wmmse_fixed(H, P, sigma2, T)``. Every iterate is on
the power sphere whatever the parameters (the beams are feasible by construction), and the map is
differentiable in the parameters and the channels, so the parameters are trained without labels on the
sum rate through the iterations (:mod:`jaxbeam.jobs.unfolded`; the idea of Pellaco et al. 2020 and Hu et al.
2021, with fewer parameters: 3 per iteration).

The cost of an iteration is WMMSE's (one K x K inverse and three K x K products, batch-minor) plus one K x K
product for the power of the extrapolated coefficients.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxbeam.core.power import project_power
from jaxbeam.solvers import _common as C
from jaxbeam.solvers._wmmse_kernel import _bmm_bm, _from_bm, _rzf_coef_bm, _to_bm, _user_power_bm, mmse_update_bm

PARAMS = ("log_mu", "log_beta", "gamma")
"""The learned scalars per iteration (module docstring)."""


def identity_params(iterations: int, dtype=jnp.float32) -> dict:
    """Parameters of ``iterations`` unfolded iterations that make :func:`unfolded_wmmse` WMMSE itself (zeros)."""
    if not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations must be an int >= 1; got {iterations!r}")
    return {name: jnp.zeros((iterations,), dtype) for name in PARAMS}


def _check_params(params) -> int:
    if not isinstance(params, dict) or set(params) != set(PARAMS):
        got = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise ValueError(f"params must be a dict with keys {list(PARAMS)} (one (T,) array each); got {got}")
    shapes = {name: jnp.shape(params[name]) for name in PARAMS}
    if len(set(shapes.values())) != 1 or len(shapes["gamma"]) != 1 or shapes["gamma"][0] < 1:
        raise ValueError(f"params must hold one (T,) array per key with the same T >= 1; got shapes {shapes}")
    return shapes["gamma"][0]


def unfolded_wmmse(
    H: ArrayLike,
    P: ArrayLike,
    sigma2: ArrayLike,
    params: dict,
    *,
    mask: ArrayLike | None = None,
    weights: ArrayLike | None = None,
) -> jax.Array:
    """Beams of ``T`` unfolded WMMSE iterations (module docstring) from the RZF start, batched.

    Args:
      H: complex ``(..., K, N)`` channels (zero columns are absent antennas and change nothing).
      P: power budget [W] (> 0), scalar or ``(...,)``.
      sigma2: noise power [W], scalar, ``(...,)`` or per user ``(..., K)``.
      params: ``{"log_mu", "log_beta", "gamma"}``, each float ``(T,)`` (:func:`identity_params` is WMMSE).
      mask: optional bool ``(..., K)`` of present users (absent users get zero beams).
      weights: optional rate weights ``(..., K)`` (default: the sum rate).

    Returns:
      complex ``(..., K, N)`` beams with ``||W||_F^2 = P`` (up to rounding).
    """
    T = _check_params(params)
    params = {name: jnp.asarray(params[name]) for name in PARAMS}  # (host arrays from a checkpoint included)
    budget = P
    Hn, Pb, mask_f, w = C.prepare(H, P, sigma2, mask, weights)
    batch = Pb.shape
    nb = len(batch)
    Gm, Pb, w, mask_f = (_to_bm(x, nb) for x in (C.gram(Hn), Pb, w, mask_f))
    tiny = jnp.finfo(Pb.dtype).tiny

    def step(t, Y):
        Yh, _ = mmse_update_bm(
            _bmm_bm(Gm, Y), Gm, Pb, w, jnp.zeros_like(Pb), newton_steps=0, multiplier="closed",
            mu_scale=jnp.exp(params["log_mu"][t]), v_power=jnp.exp(params["log_beta"][t]),
        )  # fmt: skip
        Yt = Yh + params["gamma"][t].astype(Yh.dtype) * (Yh - Y)
        p = jnp.sum(_user_power_bm(Yt, Gm), axis=0)  # ||W||_F^2, (B,)
        scale = jnp.where(p > tiny, jnp.sqrt(Pb / jnp.maximum(p, tiny)), 0.0)
        return Yt * scale.astype(Yt.dtype)

    Y = jax.lax.fori_loop(0, T, step, _rzf_coef_bm(Gm, Pb, mask_f))
    return project_power(C.beams(_from_bm(Y, batch), Hn), budget)


__all__ = ["PARAMS", "identity_params", "unfolded_wmmse"]
