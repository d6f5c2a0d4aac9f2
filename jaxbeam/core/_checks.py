r"""Argument checks shared by the functional core.

Two kinds of check, both free at run time under ``jit``:

* **static** checks (rank, shape, dtype) look at what a tracer also has, so they run once while tracing;
* **value** checks (finite, positive, in range) run only on *concrete* inputs: Python scalars, numpy
  arrays and jax arrays that are not tracers (:func:`is_concrete`). They run eagerly, before any
  ``jit`` wrapper, and a traced value skips them; every public function documents what a traced edge
  value gives (never a silent NaN from ``P = 0``, ``sigma2 = 0`` or an out-of-range task id).

Errors are ``ValueError`` (wrong value or shape) or :class:`DTypeError`, a ``TypeError`` that is also a
``ValueError`` (wrong dtype: real or integer where complex is expected, complex or bool where real is
expected), and name the argument.

**Broadcasting rule for per-user parameters (noise).** ``sigma2`` broadcasts by numpy rules, from the
right, against the per-user shape ``batch + (K,)``: a scalar, per user ``(K,)`` or ``(..., K)``, per
sample ``(..., 1)``. A per-sample vector ``(B,)`` is *not* per sample (it would be read as per user when
``B == K``); write it ``(B, 1)``, e.g. ``sigma2[:, None]``. :func:`noise` implements the rule; every
function that takes ``sigma2`` (utilities, precoders, power adapters, solvers, losses, models) uses it.
Per-sample parameters (``P``, ``Pc``, ``mu_db``) broadcast against ``batch`` (:func:`real_param`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxbeam.core import _jit

TASKS = ("sr", "mr", "ee")  # task ids 0, 1, 2 (re-exported as jb.TASKS)


class DTypeError(TypeError, ValueError):
    """A wrong dtype (real or integer where complex is expected, complex or bool where real is expected).

    A ``TypeError``, and also a ``ValueError`` so that code catching the argument errors of the core as
    ``ValueError`` keeps working (the pattern of numpy's ``AxisError(ValueError, IndexError)``).
    """


def _describe(x) -> str:
    return f"shape {tuple(jnp.shape(x))} and dtype {jnp.result_type(x)}"


def is_concrete(x) -> bool:
    """True for values known now (Python scalars, numpy arrays, non-traced jax arrays), False for tracers."""
    return not isinstance(x, jax.core.Tracer)


def _host(x) -> np.ndarray | None:
    """``x`` as a numpy array if concrete, else None."""
    if not is_concrete(x):
        return None
    return np.asarray(x)


def _short(x) -> str:
    """``repr(x)``, cut to 60 characters."""
    r = repr(x)
    return r if len(r) <= 60 else r[:57] + "..."


def as_array(name: str, x, expected: str) -> jnp.ndarray:
    """``jnp.asarray(x)``, or a :class:`DTypeError` naming ``name`` and ``expected`` for what is not numeric
    array data (a string, None, a dict, a list of strings, an object array): JAX's own error names neither."""
    if (
        x is None
        or isinstance(x, str | bytes)
        or (isinstance(x, np.ndarray | np.generic) and x.dtype.kind not in "biufc")
        or (isinstance(x, list | tuple) and any(isinstance(e, str | bytes) for e in jax.tree.leaves(x)))
    ):
        raise DTypeError(f"{name} must be {expected}; got {_short(x)}")
    try:
        return jnp.asarray(x)
    except (TypeError, ValueError, OverflowError) as e:
        raise DTypeError(f"{name} must be {expected}; got {type(x).__name__} {_short(x)} ({e})") from None


def count(name: str, value, low: int = 1, what: str = "") -> int:
    """A static integer setting (a width, a layer or head count) ``>= low``, else ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{name} must be an int >= {low}{' (' + what + ')' if what else ''}; got {_short(value)}")
    return int(value)


def _first_bad(bad: np.ndarray) -> str:
    idx = tuple(int(i) for i in np.argwhere(bad)[0]) if bad.ndim else ()
    return f"{bad.sum()} of {bad.size} entries, the first at index {idx}"


@jax.jit
def _all_finite(x):
    return jnp.all(jnp.isfinite(x))


def finite(name: str, x) -> None:
    """Raise ``ValueError`` if concrete ``x`` holds NaN or Inf (real or complex); traced ``x`` passes.

    A traced ``x`` that is an input of a :func:`jaxbeam.core._jit.public` function being traced is
    checked on every call of that function instead (:func:`jaxbeam.core._jit.defer`); so are the other
    value checks below.
    """
    if not is_concrete(x):
        _jit.defer(x, ("finite", name), lambda v: finite(name, v), lambda t: jnp.all(jnp.isfinite(t)))
        return
    if jnp.size(x) == 0:
        return
    if isinstance(x, jax.Array):
        with jax.ensure_compile_time_eval():  # a concrete array closed over inside a jit: still eager
            if bool(_all_finite(x)):  # reduce on the device; fetch the entries only on failure
                return
    h = np.asarray(x)
    bad = ~np.isfinite(h)
    if bad.any():
        raise ValueError(f"{name} must be finite; it holds NaN or Inf in {_first_bad(bad)}")


def _in_range(t, low, strict):
    """Traced form of :func:`values`: finite and ``> low`` (``>= low``)."""
    ok = jnp.isfinite(t)
    if low is not None:
        ok = ok & ((t > low) if strict else (t >= low))
    return ok


def values(name: str, x, *, low: float | None = None, strict: bool = True, what: str = "") -> None:
    """Value check of a concrete real argument: finite and ``> low`` (``>= low`` if not ``strict``).

    Traced ``x`` passes (see the module docstring). Raises ``ValueError`` naming ``name`` and ``what``.
    """
    h = _host(x)
    if h is None:
        _jit.defer(
            x,
            ("values", name, low, strict, what),
            lambda v: values(name, v, low=low, strict=strict, what=what),
            lambda t: jnp.all(_in_range(t, low, strict)),
        )
        return
    if h.size == 0:
        return
    bound = "" if low is None else (f" > {low:g}" if strict else f" >= {low:g}")
    expected = f"{name} must be finite{bound}{' (' + what + ')' if what else ''}"
    bad = ~np.isfinite(h)
    if bad.any():
        raise ValueError(f"{expected}; got NaN or Inf in {_first_bad(bad)}")
    if low is not None:
        bad = h <= low if strict else h < low
        if bad.any():
            raise ValueError(f"{expected}; got {h[bad].flat[0].item()!r} in {_first_bad(bad)}")


def complex_kn(name: str, x: ArrayLike) -> jnp.ndarray:
    """Return ``x`` as a complex array of shape ``(..., K, N)``, ``K, N >= 1``, with finite entries if concrete.

    Raises ``TypeError`` for a real, integer or bool dtype; ``ValueError`` for rank < 2, ``K = 0`` or
    ``N = 0``, or NaN/Inf entries of a concrete array. Traced NaN/Inf entries propagate to the result.
    An empty batch (e.g. ``(0, K, N)``) is fine.
    """
    x_in = x
    x = as_array(name, x, "a complex array of shape (..., K, N)")
    if not jnp.issubdtype(x.dtype, jnp.complexfloating):
        raise DTypeError(
            f"{name} must be a complex array of shape (..., K, N); got {_describe(x)}. "
            f"Real/imaginary parts belong in a complex dtype (e.g. x.real + 1j * x.imag)."
        )
    if x.ndim < 2:
        raise ValueError(f"{name} must have shape (..., K, N) with rank >= 2; got {_describe(x)}")
    if x.shape[-2] == 0 or x.shape[-1] == 0:
        raise ValueError(f"{name} must have K >= 1 users and N >= 1 antennas, shape (..., K, N); got {_describe(x)}")
    finite(name, x_in)
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


def _flags(mask, batch_shape: tuple, n: int, name: str, axis: str, what: str) -> jnp.ndarray:
    """``mask`` as booleans ``(..., n)`` broadcastable to ``batch_shape + (n,)`` (else TypeError, ValueError)."""
    mask = as_array(name, mask, f"a boolean array of shape (..., {axis}={n})")
    if mask.dtype != jnp.bool_:
        raise DTypeError(f"{name} must be a boolean array of shape (..., {axis}={n}); got {_describe(mask)}")
    if mask.ndim < 1 or mask.shape[-1] != n:
        raise ValueError(f"{name} must have shape (..., {axis}={n}) (one flag per {what}); got {_describe(mask)}")
    try:
        jnp.broadcast_shapes(mask.shape[:-1], batch_shape)
    except ValueError:
        raise ValueError(f"{name} batch shape {mask.shape[:-1]} does not broadcast to {batch_shape}") from None
    return mask


def user_mask(mask, batch_shape: tuple, K: int, name: str = "mask") -> jnp.ndarray | None:
    """Validate a boolean user mask broadcastable to ``batch_shape + (K,)`` (``TypeError`` for another dtype)."""
    return None if mask is None else _flags(mask, batch_shape, K, name, "K", "user")


def antenna_mask(mask, batch_shape: tuple, N: int, name: str = "antenna_mask") -> jnp.ndarray | None:
    """Validate a boolean antenna mask broadcastable to ``batch_shape + (N,)`` and broadcast it there."""
    if mask is None:
        return None
    return jnp.broadcast_to(_flags(mask, batch_shape, N, name, "N", "antenna"), tuple(batch_shape) + (N,))


def antenna_budget(name: str, x, batch_shape: tuple, N: int) -> jnp.ndarray:
    """Validate per-antenna power budgets: real, a scalar or ``(..., N)`` broadcastable to ``batch_shape + (N,)``,
    concrete values finite and > 0. Returns ``x`` as an array (its own shape)."""
    arr = _real(name, x)
    if not _broadcasts_to(arr.shape, tuple(batch_shape) + (N,)):
        raise ValueError(
            f"{name} must be a scalar (every antenna) or per antenna (..., N={N}) broadcastable to "
            f"{tuple(batch_shape) + (N,)}; got shape {arr.shape}"
        )
    values(name, x, low=0.0, what="per-antenna power budget in W")
    return arr


def _real(name: str, x) -> jnp.ndarray:
    x = as_array(name, x, "a real number or array")
    if jnp.issubdtype(x.dtype, jnp.complexfloating) or x.dtype == jnp.bool_:
        raise DTypeError(f"{name} must be real; got {_describe(x)}")
    return x


def _broadcasts_to(shape: tuple, target: tuple) -> bool:
    """Whether an array of ``shape`` broadcasts (numpy rules) to exactly ``target``."""
    try:
        return jnp.broadcast_shapes(tuple(shape), tuple(target)) == tuple(target)
    except ValueError:
        return False


def real_param(
    name: str, x, batch_shape: tuple, *, low: float | None = None, strict: bool = True, what: str = ""
) -> jnp.ndarray:
    """Validate a real scalar or per-sample parameter such as ``P`` or ``Pc``: broadcastable to ``batch_shape``.

    With ``low`` given, a concrete value must also be finite and ``> low`` (``>= low`` if not ``strict``)
    (:func:`values`). Returns ``x`` as an array (its own shape).
    """
    x_in = x
    x = _real(name, x)
    if not _broadcasts_to(x.shape, batch_shape):
        raise ValueError(f"{name} must be a scalar or per sample, broadcastable to {batch_shape}; got {_describe(x)}")
    if low is not None:
        values(name, x_in, low=low, strict=strict, what=what)
    return x


def noise(name: str, x, batch_shape: tuple, K: int) -> jnp.ndarray:
    """Validate a noise power ``sigma2`` by the broadcasting rule of the module docstring.

    Broadcastable (numpy rules, from the right) to ``batch_shape + (K,)``; a concrete value must be
    finite and > 0 [W]. Returns ``x`` with at least one axis (scalars become ``(1,)``), so that it
    broadcasts against per-user arrays ``(..., K)``.
    """
    x_in = x
    x = _real(name, x)
    target = tuple(batch_shape) + (K,)
    if not _broadcasts_to(x.shape, target):
        raise ValueError(
            f"{name} must broadcast (numpy rules, from the right) to the per-user shape (..., K) = {target}: "
            f"a scalar, per user (K,) or (..., K), or per sample (..., 1); got {_describe(x)}"
        )
    values(name, x_in, low=0.0, what="noise power in W")
    return x.reshape((1,)) if x.ndim == 0 else x


def weights(name: str, x, batch_shape: tuple, K: int) -> jnp.ndarray:
    """Validate per-user rate weights: real, broadcastable to ``batch_shape + (K,)``, concrete ones finite and >= 0."""
    x_in = x
    x = _real(name, x)
    target = tuple(batch_shape) + (K,)
    if x.ndim < 1 or not _broadcasts_to(x.shape, target):
        raise ValueError(
            f"{name} must be real per-user rate weights broadcastable to (..., K) = {target}; got {_describe(x)}"
        )
    values(name, x_in, low=0.0, strict=False, what="non-negative rate weights")
    return x


def name_in(name: str, value, choices: tuple) -> str:
    """Raise ``ValueError`` unless ``value`` is one of ``choices`` (strings)."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}; got {value!r}")
    return value


def task_ids(name: str, task, batch_shape: tuple | None = None) -> jnp.ndarray:
    """Validate integer task ids (indices into ``jb.TASKS``: 0 = SR, 1 = MR, 2 = EE).

    ``TypeError`` for a non-integer dtype; ``ValueError`` for a shape that does not broadcast to
    ``batch_shape`` (if given) or for a concrete id outside ``[0, 3)``. Traced ids cannot be checked:
    callers clamp them into range (documented where they do). Returns the ids, broadcast to
    ``batch_shape`` if given.

    Data-set and command-line entry points call this on the ids they read (``task_ids("task", ids)``).
    """
    t_in = task
    task = as_array(name, task, f"integer task ids in [0, {len(TASKS)}) (indices of jb.TASKS = {TASKS})")
    if not jnp.issubdtype(task.dtype, jnp.integer):
        raise DTypeError(
            f"{name} must be integer task ids in [0, {len(TASKS)}) (indices of jb.TASKS = {TASKS}); "
            f"got {_describe(task)}"
        )
    if batch_shape is not None:
        if not _broadcasts_to(task.shape, batch_shape):
            raise ValueError(
                f"{name} must be a scalar or per sample, broadcastable to {batch_shape}; got {_describe(task)}"
            )
    _task_range(name, t_in)
    return task if batch_shape is None else jnp.broadcast_to(task, batch_shape)


def _task_range(name: str, task) -> None:
    """Raise ``ValueError`` for a concrete task id outside ``[0, 3)`` (deferred for public inputs)."""
    h = _host(task)
    if h is None:
        _jit.defer(
            task, ("task_ids", name), lambda v: _task_range(name, v), lambda t: jnp.all((t >= 0) & (t < len(TASKS)))
        )
        return
    if h.size:
        bad = (h < 0) | (h >= len(TASKS))
        if bad.any():
            raise ValueError(
                f"{name} must be integer task ids in [0, {len(TASKS)}) (indices of jb.TASKS = {TASKS}); "
                f"got {h[bad].flat[0].item()!r} in {_first_bad(bad)}"
            )


def nonzero_mean(name: str, x) -> None:
    """Raise ``ValueError`` if concrete ``x`` has mean 0 (a divisor such as eq. 31's reference)."""
    if not is_concrete(x):
        _jit.defer(x, ("nonzero_mean", name), lambda v: nonzero_mean(name, v), lambda t: jnp.mean(t) != 0)
        return
    if np.size(x) and float(np.mean(np.asarray(x, np.float64))) == 0.0:
        raise ValueError(f"{name} must have a non-zero mean (eq. 31 divides by it); got mean 0")


def clamp_task(task: jnp.ndarray) -> jnp.ndarray:
    """Clip task ids into ``[0, 3)`` (the traced path: an out-of-range traced id acts as the nearest valid one)."""
    return jnp.clip(task, 0, len(TASKS) - 1)


def floor_noise(sigma2: jnp.ndarray, signal_scale: jnp.ndarray) -> jnp.ndarray:
    r"""The traced-value policy for noise: ``sigma2`` floored at ``eps * signal_scale`` (and the smallest normal).

    ``signal_scale`` is a received signal power such as ``P * mean_k ||h_k||^2``, so the floor caps the
    SNR at ``1 / eps`` (69 dB in float32, 157 dB in float64): far above every meaningful operating
    point, and it turns a traced ``sigma2 <= 0`` or NaN (which concrete inputs cannot reach: they raise)
    into a finite, high-SNR problem instead of a division by zero.
    """
    dtype = sigma2.dtype
    floor = jnp.maximum(jnp.finfo(dtype).eps * signal_scale.astype(dtype), jnp.finfo(dtype).tiny)
    return jnp.where(sigma2 > floor, sigma2, floor)  # NaN > floor is False: NaN -> floor


def row_scale(X: jnp.ndarray, axes=(-2, -1)) -> jnp.ndarray:
    """``max |Re|, |Im|`` of ``X`` over ``axes`` (kept as size-1 axes), 1 where it is 0; no gradient.

    Dividing by it before squaring keeps norms of inputs near the float range's ends from overflowing
    (``x 1e30``) or underflowing; functions that are invariant to the scale of ``X`` then give the same
    result for ``c X`` as for ``X``.
    """
    c = jnp.max(jnp.maximum(jnp.abs(X.real), jnp.abs(X.imag)), axis=axes, keepdims=True)
    c = jnp.where((c > 0) & jnp.isfinite(c), c, 1.0)
    return jax.lax.stop_gradient(c)
