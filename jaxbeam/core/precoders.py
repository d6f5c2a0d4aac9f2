r"""Closed-form linear precoders at full power: MRT, ZF and RZF (LMMSE); and the optimal beamforming
structure (:func:`optimal_structure`) that generalises RZF with per-user weights and powers; the four
closed-form references by name (:func:`linear_beams`, :func:`linear_baselines`: MRT, ZF, RZF, RZF_BAL).

Each returns beam directions ``d_k`` (unit norm) with equal power per present user,
``w_k = sqrt(P / K_active) d_k``, so ``||W||_F^2 = P`` exactly.

All three share one linear-algebra core: with the K x K Gram matrix ``H H^H``,

.. math:: W \propto (\alpha I_K + H H^H)^{-1} H

gives ZF for ``alpha = 0`` (``h_k^H w_i = 0`` for ``i != k``) and RZF / LMMSE for
``alpha = K sigma2 / P`` (reference 002, eq. 5, with noise ``sigma2``); MRT is ``W \propto H``.
Solving a K x K system instead of inverting the N x N matrix of 002 eq. 5 is the matrix inversion
lemma, ``(a I_N + H^T H^*)^{-1} H^T = H^T (a I_K + H^* H^T)^{-1}``.

Scale: every sample's ``H`` is divided by its largest entry magnitude first (:func:`jaxbeam.core._checks.row_scale`,
with ``alpha`` rescaled to match), so channels near the float range's ends (``x 1e30``, ``x 1e-30``) give the
same beams as ``H`` itself (MRT, ZF) or as the exact RZF of the scaled system.

Values: concrete ``P`` must be finite and > 0, concrete ``sigma2`` > 0, concrete ``H`` finite (``ValueError``).
A traced ``P <= 0`` or NaN gives zero beams; a traced ``sigma2 <= 0`` gives the ZF limit of RZF.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxbeam.core import _checks
from jaxbeam.core._jit import public
from jaxbeam.core.linalg import bmm, gains, hpd_solve
from jaxbeam.core.power import POWER_CONSTRAINTS, maxmin_power, scale_antenna_power, split_budget
from jaxbeam.core.utility import TASKS, utility


def _prepare(H, P, mask):
    """Checked ``H / c`` (``c`` the per-sample scale, ``(..., 1, 1)``), ``P`` (0 where a traced P is not > 0), mask."""
    H = _checks.complex_kn("H", H)
    batch, K = H.shape[:-2], H.shape[-2]
    mask = _checks.user_mask(mask, batch, K)
    P = _checks.real_param("P", P, batch, low=0.0, what="power budget in W").astype(H.real.dtype)
    P = jnp.where(P > 0, P, 0.0)  # traced P <= 0 or NaN: zero beams
    if mask is not None:
        mask = jnp.broadcast_to(mask, batch + (K,))
        H = jnp.where(mask[..., None], H, 0)
    c = _checks.row_scale(H)
    return H / c.astype(H.dtype), c, P, mask


def _equal_power(D, P, mask):
    """Scale each row of ``D`` to norm ``sqrt(P / K_active)``; absent, zero or non-finite rows become zero."""
    K = D.shape[-2]
    D = jnp.where(jnp.all(jnp.isfinite(D), axis=(-2, -1), keepdims=True), D, 0)
    D = D / _checks.row_scale(D, axes=-1).astype(D.dtype)  # no overflow of the row norms
    norm2 = jnp.sum(D.real**2 + D.imag**2, axis=-1)
    k_active = K if mask is None else jnp.maximum(jnp.sum(mask, axis=-1), 1).astype(P.dtype)
    per_beam = P / k_active  # (...,)
    scale = jnp.sqrt(per_beam[..., None] / jnp.where(norm2 > 0, norm2, 1.0))
    scale = jnp.where(norm2 > 0, scale, 0.0)
    return D * scale[..., None].astype(D.dtype)


def _regularized_inverse(H, alpha, mask, *, return_min_pivot=False):
    """``(alpha I + H H^H)^{-1} H`` for a K x K system, absent users decoupled by a unit diagonal."""
    K = H.shape[-2]
    gram = jnp.einsum("...kn,...in->...ki", H, jnp.conj(H))  # (H H^H)[k, i] = h_k^T h_i^*
    diag = jnp.broadcast_to(jnp.asarray(alpha, H.real.dtype)[..., None], gram.shape[:-1])
    if mask is not None:
        diag = jnp.where(mask, diag, 1.0)  # zero rows of H: keep the system non-singular
    A = gram + jnp.eye(K, dtype=H.dtype) * diag[..., None].astype(H.dtype)
    return hpd_solve(A, H, return_min_pivot=return_min_pivot)


def _constrained(W, H, P, mask, power):
    """``W`` as is (total power) or scaled into ``P / N`` per antenna (:func:`scale_antenna_power`)."""
    if _checks.name_in("power", power, POWER_CONSTRAINTS) == "antenna":
        return scale_antenna_power(W, split_budget(H, P, "H"), mask=mask)
    return W


@public(static=("power",))
def mrt(H: ArrayLike, P: ArrayLike, *, mask: ArrayLike | None = None, power: str = "total") -> jax.Array:
    r"""Maximum ratio transmission: ``w_k = sqrt(P/K) h_k / ||h_k||``.

    Args:
      H: complex ``(..., K, N)`` channels.
      P: power budget [W], scalar or per sample ``(...,)``.
      mask: optional bool ``(..., K)``; absent users get zero beams and no power.
      power: see :func:`rzf`.

    Returns:
      complex ``(..., K, N)`` with ``||W||_F^2 = P`` (total power).
    """
    H0 = H
    H, _, P, mask = _prepare(H, P, mask)
    return _constrained(_equal_power(H, P, mask), H0, P, mask, power)


@public(static=("power",))
def zf(H: ArrayLike, P: ArrayLike, *, mask: ArrayLike | None = None, power: str = "total") -> jax.Array:
    r"""Zero forcing: ``W \propto (H H^H)^{-1} H``, so ``h_k^H w_i = 0`` for ``i != k``.

    Exists only for ``K <= N`` (``H H^H`` must be invertible); raises ``ValueError`` otherwise. Computed
    as ``(delta I + H H^H)^{-1} H`` with the tiny relative regulariser ``delta = eps tr(H H^H)`` (``eps`` of
    the dtype), at the solve's own round-off for full-rank channels. Where ``H H^H`` is numerically
    singular (a pivot of the elimination below ``sqrt(eps)`` of its diagonal entry, e.g. two identical
    users), ZF does not exist; the sample then gets the pseudo-inverse limit ``(H H^H)^+ H`` through
    ``delta = sqrt(eps) tr(H H^H) / K`` (so round-off along the null space is not amplified): finite
    beams at full power, users outside the dependent set still nulled, instead of NaN.
    A sample whose solve still fails gets zero beams.

    Args:
      H: complex ``(..., K, N)`` channels, ``K <= N``.
      P: power budget [W], scalar or per sample ``(...,)``.
      mask: optional bool ``(..., K)``.
      power: see :func:`rzf`.

    Returns:
      complex ``(..., K, N)`` with ``||W||_F^2 = P`` (total power).
    """
    H0 = _checks.complex_kn("H", H)
    K, N = H0.shape[-2:]
    if K > N:
        raise ValueError(
            f"zf needs K <= N (it nulls K-1 users with N antennas); got H with K={K}, N={N}. Use rzf instead."
        )
    H, _, P, mask = _prepare(H0, P, mask)
    eps = jnp.finfo(H.real.dtype).eps
    tr = jnp.sum(H.real**2 + H.imag**2, axis=(-2, -1))  # tr(H H^H), per sample
    D, rel_pivot = _regularized_inverse(H, eps * tr, mask, return_min_pivot=True)
    # numerically singular (a pivot below sqrt(eps) of its diagonal): the pseudo-inverse limit, from a
    # regulariser large enough that round-off along the null space is not amplified
    singular = rel_pivot < jnp.sqrt(eps)
    D2 = _regularized_inverse(H, jnp.sqrt(eps) * tr / K, mask)
    return _constrained(_equal_power(jnp.where(singular[..., None, None], D2, D), P, mask), H0, P, mask, power)


@public(static=("power",))
def rzf(
    H: ArrayLike, P: ArrayLike, sigma2: ArrayLike = 0.1, *, mask: ArrayLike | None = None, power: str = "total"
) -> jax.Array:
    r"""Regularized ZF / LMMSE beams of reference 002, eq. 5, with noise ``sigma2``.

    .. math::
        w_k = \sqrt{P/K} \frac{(\sigma^2 I_N + \tfrac{P}{K} \sum_i h_i h_i^H)^{-1} h_k}
                               {\|(\sigma^2 I_N + \tfrac{P}{K} \sum_i h_i h_i^H)^{-1} h_k\|}

    computed as ``(K sigma2 / P I_K + H H^H)^{-1} H`` (a K x K solve), any K.

    Args:
      H: complex ``(..., K, N)`` channels.
      P: power budget [W], scalar or per sample ``(...,)``.
      sigma2: noise power [W] (> 0), broadcast against ``(..., K)`` (:mod:`jaxbeam.core._checks`): scalar, per
        user ``(K,)`` or ``(..., K)``, per sample ``(..., 1)``. With per-user noise the beams are the RZF of the
        noise-normalised channels ``h_k / sigma_k`` (the optimal structure with ``lambda_k = P / (K sigma_k^2)``),
        which is the formula above when all ``sigma_k`` are equal.
      mask: optional bool ``(..., K)``; ``K`` above counts present users only.
      power: ``"total"`` (default) or ``"antenna"``: the beams scaled as a whole until the fullest antenna
        meets ``P / N`` (the "scaled RZF" of per-antenna budgets, :func:`jaxbeam.scale_antenna_power`).

    Returns:
      complex ``(..., K, N)`` with ``||W||_F^2 = P`` (total power); zero beams where a traced ``P`` is not > 0.
    """
    H0 = H
    H, c, P, mask = _prepare(H, P, mask)
    K = H.shape[-2]
    s2 = jnp.broadcast_to(_checks.noise("sigma2", sigma2, H.shape[:-2], K).astype(P.dtype), H.shape[:-1])
    s2 = jnp.where(s2 > 0, s2, 0.0)  # traced sigma2 <= 0 or NaN: the ZF limit
    present = jnp.ones(s2.shape, bool) if mask is None else mask
    s_ref = jnp.min(jnp.where(present, s2, jnp.inf), axis=-1)  # per sample; == sigma2 for equal noise
    s_ref = jnp.where(jnp.isfinite(s_ref), s_ref, 0.0)
    # h_k / sigma_k relative to s_ref: exactly 1 for equal noise; absent users' rows are zero anyway
    rel = jnp.where(present & (s2 > 0), jnp.sqrt(s_ref[..., None] / jnp.where(s2 > 0, s2, 1.0)), 1.0)
    Hn = H * rel[..., None].astype(H.dtype)
    k_act = K if mask is None else jnp.maximum(jnp.sum(mask, axis=-1), 1).astype(P.dtype)
    # (K sigma2 / P) for H, divided by c^2 for H / c; traced P = 0: any finite value (the beams are zeroed)
    c2 = (c[..., 0, 0] ** 2).astype(P.dtype)
    alpha = jnp.where(P > 0, k_act * s_ref / jnp.where(P > 0, P, 1.0) / c2, 1.0)
    # alpha within [eps, 1 / eps] x tr(Hn Hn^H): the same beams to round-off (ZF limit below, MRT limit above),
    # a finite solve at traced sigma2 = 0 (as zf) and no inf pivot at tiny channels (H x 1e-30).
    eps = jnp.finfo(P.dtype).eps
    tr = jnp.sum(Hn.real**2 + Hn.imag**2, axis=(-2, -1))
    alpha = jnp.clip(alpha, eps * tr, tr / eps)
    return _constrained(_equal_power(_regularized_inverse(Hn, alpha, mask), P, mask), H0, P, mask, power)


@public()
def optimal_structure(H: ArrayLike, lam: ArrayLike, p: ArrayLike, *, mask: ArrayLike | None = None) -> jax.Array:
    r"""Beams of the optimal beamforming structure (Bjornson, Bengtsson, Ottersten, IEEE SPM 2014).

    .. math::
        w_k = \sqrt{p_k}\, \frac{(I_N + \sum_i \lambda_i h_i h_i^H)^{-1} h_k}
                                {\|(I_N + \sum_i \lambda_i h_i h_i^H)^{-1} h_k\|}

    Every Pareto-optimal point of the downlink rate region under the total power constraint (3b), so
    the SR, MR and EE optima of problem (3), has this form for some ``lambda >= 0`` (the uplink powers
    of the dual problem divided by the noise power) and powers ``p``; RZF is ``lambda_k = P / (K
    sigma2)``, ``p_k = P / K``. The N x N inverse is never formed: with the Gram matrix ``Gm[i, k] =
    h_i^H h_k`` and ``D = diag(sqrt(lambda))``, ``w_k`` is proportional to ``sum_m h_m (D (I + D Gm D)^{-1})[m, k]``
    (push-through identity; a K x K Hermitian positive-definite solve), so it costs O(K^3 + K^2 N)
    and is differentiable in ``H``, ``lam`` and ``p``.

    Args:
      H: complex ``(..., K, N)`` channels.
      lam: real ``(..., K)``, ``lambda_k > 0`` for present users [1/W].
      p: real ``(..., K)``, per-user transmit powers ``p_k >= 0`` [W]; ``||W||_F^2 = sum_k p_k``.
      mask: optional bool ``(..., K)``; absent users get zero beams and do not shape the others.

    Returns:
      complex ``(..., K, N)`` with ``||w_k||^2 = p_k``.
    """
    H = _checks.complex_kn("H", H)
    batch, K = H.shape[:-2], H.shape[-2]
    rdtype = H.real.dtype
    mask = _checks.user_mask(mask, batch, K)
    present = jnp.ones(batch + (K,), bool) if mask is None else jnp.broadcast_to(mask, batch + (K,))
    lam, p = (jnp.asarray(x) for x in (lam, p))
    for name, x in (("lam", lam), ("p", p)):
        if jnp.issubdtype(x.dtype, jnp.complexfloating) or x.ndim < 1 or x.shape[-1] != K:
            raise ValueError(f"{name} must be real with shape (..., K={K}); got shape {x.shape} and dtype {x.dtype}")
    H = jnp.where(present[..., None], H, 0)
    d = jnp.sqrt(jnp.where(present, jnp.maximum(lam.astype(rdtype), 0.0), 0.0))
    gram = gains(H, H)  # Gm[i, k] = h_i^H h_k
    M = d[..., :, None] * gram * d[..., None, :] + jnp.eye(K, dtype=rdtype)
    Y = d[..., :, None].astype(H.dtype) * hpd_solve(
        M.astype(H.dtype), jnp.broadcast_to(jnp.eye(K, dtype=H.dtype), M.shape)
    )
    # column k of Y spans w_k = sum_m Y[m, k] h_m; ||w_k||^2 = (Y^H Gm Y)[k, k]
    norm2 = jnp.sum(jnp.real(jnp.conj(Y) * bmm(gram, Y)), axis=-2)
    pk = jnp.where(present, jnp.maximum(p.astype(rdtype), 0.0), 0.0)
    scale = jnp.where(norm2 > 0, jnp.sqrt(pk / jnp.where(norm2 > 0, norm2, 1.0)), 0.0)
    Y = Y * scale[..., None, :].astype(H.dtype)
    return bmm(jnp.swapaxes(Y, -1, -2), H)  # W = Y^T H


LINEAR = ("mrt", "zf", "rzf", "rzf_bal")


@public(static=("name",))
def linear_beams(name: str, H, P, sigma2=0.1, *, mask=None):
    """Beams of one closed-form precoder at full power, or None for ZF where ``K > N`` (it does not exist).

    ``name`` in :data:`LINEAR`; ``rzf_bal`` is RZF's directions with the max-min (SINR-balancing) powers of
    :func:`jaxbeam.maxmin_power`.
    """
    if name == "mrt":
        return mrt(H, P, mask=mask)
    if name == "zf":
        return None if H.shape[-2] > H.shape[-1] else zf(H, P, mask=mask)
    if name == "rzf":
        return rzf(H, P, sigma2, mask=mask)
    if name == "rzf_bal":
        return maxmin_power(H, rzf(H, P, sigma2, mask=mask), P, sigma2, mask=mask)
    raise ValueError(f"names must be drawn from {LINEAR}; got {name!r}")


@public(static=("names",))
def linear_baselines(H, P, sigma2=0.1, Pc=0.5, *, names: Sequence[str] = LINEAR, mask=None):
    """Utilities of closed-form precoders (:func:`linear_beams`): ``{name: {task: (...,) array}}``.

    ZF is skipped (absent from the result) when ``K > N``, where it does not exist.
    """
    out = {}
    for name in names:
        W = linear_beams(name, H, P, sigma2, mask=mask)
        if W is not None:
            out[name] = {task: utility(task, H, W, sigma2, Pc, mask) for task in TASKS}
    return out
