"""Trace-time argument checks shared by the functional core.

Every check looks only at static properties (rank, shape, dtype), so it runs once
while tracing under ``jit`` and costs nothing at run time.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.typing import ArrayLike


def _describe(x) -> str:
    return f"shape {tuple(jnp.shape(x))} and dtype {jnp.result_type(x)}"


def complex_kn(name: str, x: ArrayLike) -> jnp.ndarray:
    """Return ``x`` as a complex array of shape ``(..., K, N)`` or raise ``ValueError``."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.complexfloating):
        raise ValueError(
            f"{name} must be a complex array of shape (..., K, N); got {_describe(x)}. "
            f"Real/imaginary parts belong in a complex dtype (e.g. x.real + 1j * x.imag)."
        )
    if x.ndim < 2:
        raise ValueError(f"{name} must have shape (..., K, N) with rank >= 2; got {_describe(x)}")
    return x


def same_shape(name_a: str, a, name_b: str, b) -> None:
    """Raise unless ``a`` and ``b`` agree in K and N and their batch shapes broadcast."""
    if a.shape[-2:] != b.shape[-2:]:
        raise ValueError(
            f"{name_a} and {name_b} must agree in (K, N); got {name_a} {a.shape[-2:]} and {name_b} {b.shape[-2:]}"
        )
    try:
        jnp.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(
            f"batch shapes of {name_a} {a.shape[:-2]} and {name_b} {b.shape[:-2]} do not broadcast"
        ) from None


def user_mask(mask, batch_shape: tuple, K: int) -> jnp.ndarray | None:
    """Validate a boolean user mask broadcastable to ``batch_shape + (K,)``."""
    if mask is None:
        return None
    mask = jnp.asarray(mask)
    if mask.dtype != jnp.bool_:
        raise ValueError(f"mask must be a boolean array of shape (..., K={K}); got {_describe(mask)}")
    if mask.ndim < 1 or mask.shape[-1] != K:
        raise ValueError(f"mask must have shape (..., K={K}) (one flag per user); got {_describe(mask)}")
    try:
        jnp.broadcast_shapes(mask.shape[:-1], batch_shape)
    except ValueError:
        raise ValueError(f"mask batch shape {mask.shape[:-1]} does not broadcast to {batch_shape}") from None
    return mask


def real_param(name: str, x, batch_shape: tuple, *, per_user_K: int | None = None) -> jnp.ndarray:
    """Validate a real scalar / per-sample (or per-user) parameter such as ``P`` or ``sigma2``.

    Returns an array broadcastable to ``batch_shape`` (per sample) or, if ``per_user_K`` is
    given, to ``batch_shape + (K,)``: an argument whose rank is ``len(batch_shape) + 1`` is then
    read as per user ``(..., K)``; a lower rank is read as per sample and gets a user axis.
    """
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.complexfloating) or x.dtype == jnp.bool_:
        raise ValueError(f"{name} must be real; got {_describe(x)}")
    if per_user_K is not None and x.ndim == len(batch_shape) + 1:
        target = batch_shape + (per_user_K,)
        what = f"(..., K={per_user_K}) per user"
    else:
        target = batch_shape
        what = "a scalar or per sample"
    try:
        if jnp.broadcast_shapes(x.shape, target) != target:
            raise ValueError
    except ValueError:
        raise ValueError(f"{name} must be {what}, broadcastable to {target}; got {_describe(x)}") from None
    if per_user_K is not None and x.ndim <= len(batch_shape):
        x = x[..., None]
    return x
