"""Channel sampling and CSI error (BERT4beam Sec. VI-A2 and VI-B4).

Conventions (``shared/DESIGN.md``): a channel ``H`` is a complex array ``(..., K, N)`` whose row
``k`` is ``h_k``, the channel from the N transmit antennas to user k.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxbeam.core import _checks
from jaxbeam.core._jit import public


def _is_int(v) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)


def _complex_dtype(dtype) -> jnp.dtype:
    try:
        dtype = jnp.dtype(dtype) if dtype is not None else jnp.zeros((), jnp.complex64).dtype
    except TypeError:
        raise _checks.DTypeError(f"dtype must be a complex dtype (complex64 or complex128); got {dtype!r}") from None
    if not jnp.issubdtype(dtype, jnp.complexfloating):
        raise _checks.DTypeError(f"dtype must be a complex dtype (complex64 or complex128); got {dtype}")
    # Under jax_enable_x64=False, complex128 silently becomes complex64.
    return jnp.zeros((), dtype).dtype


@public(static=("batch_shape", "K", "N", "dtype"))
def rayleigh(key: jax.Array, batch_shape: Sequence[int] | int, K: int, N: int, *, dtype=jnp.complex64) -> jax.Array:
    r"""Draw i.i.d. Rayleigh-fading channels, ``h_k[n] ~ CN(0, 1)`` (Sec. VI-A2).

    .. math:: H[..., k, n] = (x + j y) / \sqrt{2}, \quad x, y \sim \mathcal{N}(0, 1)

    Args:
      key: a ``jax.random`` key.
      batch_shape: leading batch shape, e.g. ``(B,)`` (an int is read as ``(B,)``; ``()`` for one sample).
      K: number of users (>= 1).
      N: number of transmit antennas (>= 1).
      dtype: complex dtype of the result.

    Returns:
      complex ``(*batch_shape, K, N)``, unit average power per entry.
    """
    if _is_int(batch_shape):
        batch_shape = (batch_shape,)
    try:
        ok = all(_is_int(b) and b >= 0 for b in batch_shape)
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"batch_shape must be an int or a sequence of non-negative ints; got {batch_shape!r}")
    batch_shape = tuple(int(b) for b in batch_shape)
    for name, v in (("K", K), ("N", N)):
        if not _is_int(v) or v < 1:
            raise ValueError(f"{name} must be a positive int; got {v!r}")
    K, N = int(K), int(N)
    # jax.random.normal with a complex dtype draws CN(0, 1): real and imaginary parts each of variance 1/2.
    return jax.random.normal(key, (*batch_shape, K, N), dtype=_complex_dtype(dtype))


@public()
def csi_error(key: jax.Array, H: ArrayLike, mu_db: ArrayLike) -> jax.Array:
    r"""Estimated CSI with a bounded error, ``h_hat_k = h_k + e_k`` (Sec. VI-B4).

    Each error has an isotropic direction and the exact norm

    .. math:: \|e_k\|^2 = \mu \, \|h_k\|^2, \qquad \mu = 10^{\mu_{dB}/10}.

    Args:
      key: a ``jax.random`` key.
      H: complex ``(..., K, N)`` true channels.
      mu_db: relative error level in dB (the paper uses -25, -23, -21, -19); scalar or per sample ``(...,)``;
        concrete values must be finite (``ValueError``).

    Returns:
      complex ``(..., K, N)`` erroneous channel estimates, same dtype as ``H``.
    """
    H = _checks.complex_kn("H", H)
    _checks.values("mu_db", mu_db)
    mu_db = _checks.real_param("mu_db", mu_db, H.shape[:-2]).astype(H.real.dtype)
    mu = 10.0 ** (mu_db / 10.0)
    z = jax.random.normal(key, H.shape, dtype=H.dtype)
    z_norm = jnp.linalg.norm(z, axis=-1, keepdims=True)
    c = _checks.row_scale(H, axes=-1)  # no overflow of ||h_k||^2 for channels near the float range's end
    h_norm = c * jnp.linalg.norm(H / c.astype(H.dtype), axis=-1, keepdims=True)
    scale = jnp.sqrt(mu)[..., None, None] * h_norm / jnp.maximum(z_norm, jnp.finfo(z_norm.dtype).tiny)
    return H + scale * z
