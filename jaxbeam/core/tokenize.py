"""CSI tokenizers: user tokens for BERT (eq. 4) and antenna tokens for UBERT (eq. 19)."""

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
