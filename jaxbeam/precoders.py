r"""Closed-form linear precoders at full power: MRT, ZF and RZF (LMMSE).

Each returns beam directions ``d_k`` (unit norm) with equal power per present user,
``w_k = sqrt(P / K_active) d_k``, so ``||W||_F^2 = P`` exactly.

All three share one linear-algebra core: with the K x K Gram matrix ``H H^H``,

.. math:: W \propto (\alpha I_K + H H^H)^{-1} H

gives ZF for ``alpha = 0`` (``h_k^H w_i = 0`` for ``i != k``) and RZF / LMMSE for
``alpha = K sigma2 / P`` (reference 002, eq. 5, with noise ``sigma2``); MRT is ``W \propto H``.
Solving a K x K system instead of inverting the N x N matrix of 002 eq. 5 is the matrix inversion
lemma, ``(a I_N + H^T H^*)^{-1} H^T = H^T (a I_K + H^* H^T)^{-1}``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxbeam import _checks
from jaxbeam.linalg import hpd_solve


def _prepare(H, P, mask):
    H = _checks.complex_kn("H", H)
    batch, K = H.shape[:-2], H.shape[-2]
    mask = _checks.user_mask(mask, batch, K)
    P = _checks.real_param("P", P, batch).astype(H.real.dtype)
    if mask is not None:
        mask = jnp.broadcast_to(mask, batch + (K,))
        H = jnp.where(mask[..., None], H, 0)
    return H, P, mask


def _equal_power(D, P, mask):
    """Scale each row of ``D`` to norm ``sqrt(P / K_active)``; absent or zero rows stay zero."""
    K = D.shape[-2]
    norm2 = jnp.sum(D.real**2 + D.imag**2, axis=-1)
    k_active = K if mask is None else jnp.maximum(jnp.sum(mask, axis=-1), 1).astype(P.dtype)
    per_beam = P / k_active  # (...,)
    scale = jnp.sqrt(per_beam[..., None] / jnp.where(norm2 > 0, norm2, 1.0))
    scale = jnp.where(norm2 > 0, scale, 0.0)
    return D * scale[..., None].astype(D.dtype)


def _regularized_inverse(H, alpha, mask):
    """``(alpha I + H H^H)^{-1} H`` for a K x K system, absent users decoupled by a unit diagonal."""
    K = H.shape[-2]
    gram = jnp.einsum("...kn,...in->...ki", H, jnp.conj(H))  # (H H^H)[k, i] = h_k^T h_i^*
    diag = jnp.broadcast_to(jnp.asarray(alpha, H.real.dtype)[..., None], gram.shape[:-1])
    if mask is not None:
        diag = jnp.where(mask, diag, 1.0)  # zero rows of H: keep the system non-singular
    A = gram + jnp.eye(K, dtype=H.dtype) * diag[..., None].astype(H.dtype)
    return hpd_solve(A, H)


def mrt(H: ArrayLike, P: ArrayLike, *, mask: ArrayLike | None = None) -> jax.Array:
    r"""Maximum ratio transmission: ``w_k = sqrt(P/K) h_k / ||h_k||``.

    Args:
      H: complex ``(..., K, N)`` channels.
      P: power budget [W], scalar or per sample ``(...,)``.
      mask: optional bool ``(..., K)``; absent users get zero beams and no power.

    Returns:
      complex ``(..., K, N)`` with ``||W||_F^2 = P``.
    """
    H, P, mask = _prepare(H, P, mask)
    return _equal_power(H, P, mask)


def zf(H: ArrayLike, P: ArrayLike, *, mask: ArrayLike | None = None) -> jax.Array:
    r"""Zero forcing: ``W \propto (H H^H)^{-1} H``, so ``h_k^H w_i = 0`` for ``i != k``.

    Exists only for ``K <= N`` (``H H^H`` must be invertible); raises ``ValueError`` otherwise.

    Args:
      H: complex ``(..., K, N)`` channels, ``K <= N``.
      P: power budget [W], scalar or per sample ``(...,)``.
      mask: optional bool ``(..., K)``.

    Returns:
      complex ``(..., K, N)`` with ``||W||_F^2 = P``.
    """
    H0 = _checks.complex_kn("H", H)
    K, N = H0.shape[-2:]
    if K > N:
        raise ValueError(
            f"zf needs K <= N (it nulls K-1 users with N antennas); got H with K={K}, N={N}. Use rzf instead."
        )
    H, P, mask = _prepare(H0, P, mask)
    return _equal_power(_regularized_inverse(H, 0.0, mask), P, mask)


def rzf(H: ArrayLike, P: ArrayLike, sigma2: ArrayLike = 0.1, *, mask: ArrayLike | None = None) -> jax.Array:
    r"""Regularized ZF / LMMSE beams of reference 002, eq. 5, with noise ``sigma2``.

    .. math::
        w_k = \sqrt{P/K} \frac{(\sigma^2 I_N + \tfrac{P}{K} \sum_i h_i h_i^H)^{-1} h_k}
                               {\|(\sigma^2 I_N + \tfrac{P}{K} \sum_i h_i h_i^H)^{-1} h_k\|}

    computed as ``(K sigma2 / P I_K + H H^H)^{-1} H`` (a K x K solve), any K.

    Args:
      H: complex ``(..., K, N)`` channels.
      P: power budget [W], scalar or per sample ``(...,)``.
      sigma2: noise power [W], scalar or per sample ``(...,)`` (one regularizer per sample).
      mask: optional bool ``(..., K)``; ``K`` above counts present users only.

    Returns:
      complex ``(..., K, N)`` with ``||W||_F^2 = P``.
    """
    H, P, mask = _prepare(H, P, mask)
    sigma2 = _checks.real_param("sigma2", sigma2, H.shape[:-2]).astype(P.dtype)
    K = H.shape[-2] if mask is None else jnp.maximum(jnp.sum(mask, axis=-1), 1).astype(P.dtype)
    alpha = K * sigma2 / P
    return _equal_power(_regularized_inverse(H, alpha, mask), P, mask)
