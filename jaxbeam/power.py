r"""Power adapters: the GPA of eq. 15 and the Euclidean projection onto the power ball (3b)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxbeam import _checks


def _masked_power(W, mask):
    W = _checks.complex_kn("W", W)
    mask = _checks.user_mask(mask, W.shape[:-2], W.shape[-2])
    if mask is not None:
        W = jnp.where(mask[..., None], W, 0)
    power = jnp.sum(W.real**2 + W.imag**2, axis=(-2, -1))
    return W, power


def gpa(W: ArrayLike, P: ArrayLike, *, mask: ArrayLike | None = None) -> jax.Array:
    r"""Generalizable power adapter (GPA), eq. 15, applied per sample.

    .. math::
        \mathrm{GPA}(W) = \begin{cases} \sqrt{P}\, W, & \|W\|_F^2 \le 1 \\
                                        \sqrt{P / \|W\|_F^2}\, W, & \|W\|_F^2 > 1 \end{cases}
                        = \frac{\sqrt{P}}{\sqrt{\max(\|W\|_F^2, 1)}} W

    The ``max`` form is branch-free and has a finite gradient everywhere, also at ``W = 0``
    (no square root of zero is differentiated). The result satisfies ``||GPA(W)||_F^2 <= P``.

    Args:
      W: complex ``(..., K, N)`` unconstrained beamformers (the FC output of eq. 14).
      P: power budget [W], scalar or per sample ``(...,)``.
      mask: optional bool ``(..., K)``; absent users' beams are zeroed first.

    Returns:
      complex ``(..., K, N)`` feasible beamformers.
    """
    W, power = _masked_power(W, mask)
    P = _checks.real_param("P", P, W.shape[:-2]).astype(power.dtype)
    scale = jnp.sqrt(P / jnp.maximum(power, 1.0))
    return W * scale[..., None, None].astype(W.dtype)


def project_power(W: ArrayLike, P: ArrayLike, *, mask: ArrayLike | None = None) -> jax.Array:
    r"""Euclidean projection onto the power ball ``{W : ||W||_F^2 <= P}`` (constraint 3b), per sample.

    .. math:: \Pi(W) = W \sqrt{P / \max(\|W\|_F^2, P)}

    Points inside the ball are returned unchanged; points outside are scaled onto its surface.
    Differentiable, with a finite gradient at ``W = 0`` (``P > 0``).

    Args:
      W: complex ``(..., K, N)``.
      P: power budget [W] (> 0), scalar or per sample ``(...,)``.
      mask: optional bool ``(..., K)``; absent users' beams are zeroed first.

    Returns:
      complex ``(..., K, N)``.
    """
    W, power = _masked_power(W, mask)
    P = _checks.real_param("P", P, W.shape[:-2]).astype(power.dtype)
    scale = jnp.sqrt(P / jnp.maximum(power, P))
    return W * scale[..., None, None].astype(W.dtype)
