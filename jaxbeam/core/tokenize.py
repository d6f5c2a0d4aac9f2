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

    With ``antenna_mask``, each sample gets the DFT of its own present antennas: with ``n_p = sum(antenna_mask)``
    and ``r(n)`` the rank of present antenna ``n`` among the present ones (0, 1, ... in array order, a cumulative
    sum of the mask),

    .. math:: F[n, m] = e^{-2 \pi j\, r(n)\, r(m) / n_p} / \sqrt{n_p} \ (n, m \text{ present}), \quad 0 \text{ else},

    unitary on the present antennas (``F^H F = diag(antenna_mask)``) for any mask, a prefix or one with holes;
    for a prefix it is the ``n_p``-point DFT in the top-left block. The ranks are computed from the mask's
    values, so the same holds under ``jit`` with a traced mask.

    Args:
      N: the number of antennas (a static int).
      antenna_mask: optional bool ``(..., N)``, True for present antennas (any pattern).
      dtype: a complex dtype.

    Returns:
      complex ``(N, N)``, or ``(..., N, N)`` with ``antenna_mask``.
    """
    if antenna_mask is None:
        n = jnp.asarray(N)
        idx = jnp.arange(N)
        rows, cols = idx[:, None], idx[None, :]
        valid = jnp.ones((N, N), bool)
    else:
        n = jnp.maximum(jnp.sum(antenna_mask, axis=-1), 1)[..., None, None]
        rank = jnp.cumsum(antenna_mask, axis=-1) - 1  # r(n): 0, 1, ... over the present antennas
        rows, cols = rank[..., :, None], rank[..., None, :]
        valid = antenna_mask[..., :, None] & antenna_mask[..., None, :]
    # the phase index r(n) r(m) mod n in integers, so the angle stays in [0, 2 pi) in float32 for any N
    angle = (-2 * jnp.pi / n) * ((rows * cols) % n)
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
      antenna_mask: optional bool ``(..., N)``, True for present antennas (any pattern, also with holes; a
        traced mask too): each sample's present entries, in array order, are transformed by the DFT of their
        own count and written back at the present positions (:func:`dft_matrix`); absent entries come out zero.

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
