r"""Public functions that run compiled when called directly, with their value checks kept.

``jb.rzf(H, 1.0, 0.1)`` called the way docs/design.md shows it would otherwise run op by op (tens of times
slower than the same call under ``jax.jit``). :func:`public` wraps a public function so that

* called with **concrete** arguments (numpy, Python scalars, jax arrays that are not tracers), it runs
  through one ``jax.jit`` of the function (names, counts, tolerances and flags are static arguments);
* called with **tracers** (inside a caller's ``jit``, ``grad``, ``vmap``, or inside another public
  function), it runs the plain function, so it composes with every transformation exactly as before.

The argument checks stay where they are written (:mod:`jaxbeam.core._checks`). Static checks (rank, shape,
dtype) run while tracing, as always. Value checks (finite, positive, in range) need concrete values, which
a jitted body does not see; so while the wrapper traces, every value check that meets one of the
function's own input tracers is *recorded* twice: as a predicate computed inside the compiled function
(one boolean per check, returned beside the result: no extra dispatch, no host copy of the inputs) and as
the host check itself. A call whose predicates all hold returns; otherwise the host checks run on the
concrete inputs and raise the same error, naming the same argument, as an eager call would.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

_state = threading.local()

_ARRAY_TYPES = (jax.Array, np.ndarray, np.generic, bool, int, float, complex)


class _Frame:
    """The value checks met while tracing one public function: ``(input index, key, host check, predicate)``."""

    def __init__(self, inputs: dict[int, int]):
        self.inputs = inputs  # id(input tracer) -> index among the flattened dynamic inputs
        self.checks: list[tuple[int, tuple, Callable, Callable]] = []
        self._seen: set[tuple] = set()

    def add(self, index: int, key: tuple, check: Callable, ok: Callable) -> None:
        if (index, key) not in self._seen:
            self._seen.add((index, key))
            self.checks.append((index, key, check, ok))


def _frames() -> list[_Frame]:
    if not hasattr(_state, "frames"):
        _state.frames = []
    return _state.frames


def defer(x, key: tuple, check: Callable, ok: Callable) -> None:
    """Record a value check of ``x`` if ``x`` is an input tracer of the public function being traced.

    Called by the value checks of :mod:`jaxbeam.core._checks` when they meet a tracer. ``ok(x)`` is the
    check as a traced boolean scalar, ``check(x_concrete)`` the host check that raises the error; ``key``
    identifies the check (an input checked by nested public functions is checked once).
    """
    for frame in reversed(_frames()):
        index = frame.inputs.get(id(x))
        if index is not None:
            frame.add(index, key, check, ok)  # ok is evaluated on the input after the body: a check met
            return  # inside a loop body must not leak that body's tracers


def _hashable(value):
    """Static arguments must hash: lists (e.g. a batch shape or a list of names) become tuples."""
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value


def _is_array_data(value) -> bool:
    """An array or number of a numeric (or key) dtype: not a string, an object array, a dict or None."""
    if isinstance(value, np.ndarray | np.generic):
        return value.dtype.kind in "biufc"
    return isinstance(value, _ARRAY_TYPES)


def _as_array_leaf(value):
    """A plain list or tuple of numbers becomes a numpy array (not a pytree of scalars to trace one by one)."""
    if type(value) in (list, tuple):
        try:
            return np.asarray(value)
        except (ValueError, TypeError):
            return value
    return value


def _signature(leaves, treedef, static_items) -> tuple:
    avals = tuple((tuple(a.shape), str(a.dtype), bool(getattr(a, "weak_type", False))) for a in leaves)
    return (treedef, avals, static_items)


def public(static: tuple[str, ...] = ()) -> Callable:
    """Decorator: run the function under one ``jax.jit`` when called with concrete arguments (module doc).

    ``static`` names the arguments that select code rather than carry data (names, counts, tolerances,
    flags, shapes); every other argument is traced. A call whose arguments are not all arrays or numbers of a
    numeric dtype (say a string, a list of strings or a dict where an array belongs) runs the plain function,
    which reports the error.
    """

    def decorate(fn: Callable) -> Callable:
        sig = inspect.signature(fn)
        unknown = set(static) - set(sig.parameters)
        if unknown:
            raise TypeError(f"public({fn.__name__}): static names {sorted(unknown)} are not parameters")
        kinds = {p.kind for p in sig.parameters.values()}
        if kinds - {inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY}:
            raise TypeError(f"public({fn.__name__}): only plain and keyword-only parameters are supported")
        positional = [n for n, p in sig.parameters.items() if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
        defaults = {n: p.default for n, p in sig.parameters.items() if p.default is not inspect.Parameter.empty}
        names = set(sig.parameters)
        recorded: dict[tuple, list] = {}

        def bind(args, kwargs) -> dict | None:
            """The arguments by name, defaults filled in (``inspect.Signature.bind``, 10x cheaper); None for
            a call Python would reject (the plain function then raises its own ``TypeError``)."""
            if len(args) > len(positional) or not names.issuperset(kwargs):
                return None
            given = dict(zip(positional, args, strict=False))
            if not given.keys().isdisjoint(kwargs):
                return None
            out = {**defaults, **given, **kwargs}
            return out if len(out) == len(names) else None

        def traced(static_items, dynamic):
            flat, treedef = jax.tree.flatten(dynamic)
            frame = _Frame({id(leaf): i for i, leaf in enumerate(flat)})
            frames = _frames()
            frames.append(frame)
            try:
                out = fn(**dynamic, **dict(static_items))
            finally:
                frames.pop()
            recorded[_signature([leaf.aval for leaf in flat], treedef, static_items)] = frame.checks
            flags = [jnp.asarray(ok(flat[index]), bool) for index, _, _, ok in frame.checks]
            return out, (jnp.all(jnp.stack(flags)) if flags else None)

        compiled = jax.jit(traced, static_argnums=0)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            if _frames():  # inside another public function's trace: inline, checks record into its frame
                return fn(*args, **kwargs)
            arguments = bind(args, kwargs)
            if arguments is None:
                return fn(*args, **kwargs)  # let Python report the bad call
            try:
                static_items = tuple((k, _hashable(arguments.pop(k))) for k in static)
                hash(static_items)
            except TypeError:
                return fn(*args, **kwargs)
            dynamic = {k: _as_array_leaf(v) for k, v in arguments.items()}
            flat, treedef = jax.tree.flatten(dynamic)
            if not all(v is None or _is_array_data(v) for v in dynamic.values()) or any(
                isinstance(leaf, jax.core.Tracer) for leaf in flat
            ):
                return fn(*args, **kwargs)  # traced (a caller's transformation) or not array data
            out, ok = compiled(static_items, dynamic)
            # A value check failed: report it as an eager call would. Concrete inputs inside a caller's
            # transformation (constants closed over by its jit) give a traced ok: check them on the host.
            if ok is not None and (isinstance(ok, jax.core.Tracer) or not bool(ok)):
                key = _signature([jax.typeof(leaf) for leaf in flat], treedef, static_items)
                for index, _, check, _ in recorded.get(key, ()):
                    check(flat[index])
            return out

        wrapper.__wrapped__ = fn
        wrapper.eager = fn  # the plain (op-by-op) function
        wrapper.compiled = compiled  # its jax.jit (tests count its traces)
        return wrapper

    return decorate
