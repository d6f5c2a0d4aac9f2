"""CSI tokenizers: user tokens for BERT (eq. 4), antenna tokens for UBERT (eq. 19), and the angle-domain view
of the channel (paper 003 eq. 18) either can take."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxbeam.core import _checks
from jaxbeam.core._jit import public


@public()
def user_tokens(H: ArrayLike) -> jax.Array:
    r"""CSI token matrix of eq. 4: ``t_k = [Re(h_k)^T, Im(h_k)^T]^T``.

    Args:
      H: complex ``(..., K, N)`` channels.

    Returns:
      real ``(..., K, 2N)``: the first N features are real parts, the last N imaginary parts.
    """
    H = _checks.complex_kn("H", H)
    return jnp.concatenate([H.real, H.imag], axis=-1)


@public()
def antenna_tokens(H: ArrayLike) -> jax.Array:
    r"""Antenna token matrix of eq. 19: ``T_a[k, n] = [Re(h_k[n]), Im(h_k[n])]``.

    Args:
      H: complex ``(..., K, N)`` channels.

    Returns:
      real ``(..., K, N, 2)``.
    """
    H = _checks.complex_kn("H", H)
    return jnp.stack([H.real, H.imag], axis=-1)


def dft_matrix(N: int, antenna_mask: ArrayLike | None = None, dtype=jnp.complex64) -> jax.Array:
    r"""The unitary N-point DFT matrix ``F[n, m] = exp(-2 pi j n m / N) / sqrt(N)`` of paper 003 eq. 18.

    Args:
      N: the number of antennas (a static int).
      antenna_mask: optional bool ``(..., N)``, present antennas first (trailing padding, as UBERT's
        batches): each sample then gets the DFT of its own size ``n = sum(antenna_mask)`` in the top-left
        ``n x n`` block and zeros elsewhere.
      dtype: a complex dtype.

    Returns:
      complex ``(N, N)``, or ``(..., N, N)`` with ``antenna_mask``.
    """
    idx = jnp.arange(N)
    if antenna_mask is None:
        n = jnp.asarray(N)
        valid = jnp.ones((N, N), bool)
    else:
        n = jnp.maximum(jnp.sum(antenna_mask, axis=-1), 1)[..., None, None]
        valid = antenna_mask[..., :, None] & antenna_mask[..., None, :]
    # the phase index n m mod N in integers, so the angle stays in [0, 2 pi) in float32 for any N
    angle = (-2 * jnp.pi / n) * ((idx[:, None] * idx[None, :]) % n)
    rdtype = jnp.finfo(dtype).dtype
    F = jax.lax.complex(jnp.cos(angle), jnp.sin(angle)).astype(dtype) / jnp.sqrt(n).astype(rdtype)
    return jnp.where(valid, F, 0).astype(dtype)


@public()
def angle_domain(H: ArrayLike, antenna_mask: ArrayLike | None = None) -> jax.Array:
    r"""Angle-domain CSI of paper 003 eq. 18: ``H_a = H F`` (the unitary DFT over the antennas).

    Row ``k`` of ``H_a`` is the orthonormal DFT of ``h_k`` (``numpy.fft.fft(H, norm="ortho")``). The map is
    unitary, so with ``W_a = angle_domain(W)`` every gain is kept, ``conj(H_a) W_a^T = conj(H) W^T``: SINRs,
    rates and ``||W||_F`` are the same in both domains, and :func:`spatial_domain` maps beams back.

    Args:
      H: complex ``(..., K, N)`` channels (or beams).
      antenna_mask: optional bool ``(..., N)``, present antennas first; each sample is transformed by the
        DFT of its own antenna count (:func:`dft_matrix`) and padded entries come out zero.

    Returns:
      complex ``(..., K, N)``.
    """
    H = _checks.complex_kn("H", H)
    antenna_mask = _checks.antenna_mask(antenna_mask, H.shape[:-2], H.shape[-1])
    F = dft_matrix(H.shape[-1], antenna_mask, H.dtype)
    return jnp.einsum("...kn,...nm->...km", H, F)


@public()
def spatial_domain(W_a: ArrayLike, antenna_mask: ArrayLike | None = None) -> jax.Array:
    r"""The inverse of :func:`angle_domain`: ``W = W_a F^H`` (``numpy.fft.ifft(W_a, norm="ortho")``).

    Args:
      W_a: complex ``(..., K, N)`` angle-domain beams (or channels).
      antenna_mask: as :func:`angle_domain`.

    Returns:
      complex ``(..., K, N)``, zero at padded antennas.
    """
    W_a = _checks.complex_kn("W_a", W_a)
    antenna_mask = _checks.antenna_mask(antenna_mask, W_a.shape[:-2], W_a.shape[-1])
    F = dft_matrix(W_a.shape[-1], antenna_mask, W_a.dtype)
    return jnp.einsum("...km,...nm->...kn", W_a, jnp.conj(F))
