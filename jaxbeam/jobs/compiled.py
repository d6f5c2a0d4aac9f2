"""A guard for long processes that compile many programs: Linux's memory-map limit.

Every XLA:CPU executable alive in a process holds memory mappings (its JIT-linked code: 3 to about 24 each with
jaxlib 0.10), and JAX keeps every program it compiled for the life of the process. Past ``vm.max_map_count``
(65,530 by default: a few thousand programs) LLVM can no longer map memory and the next compilation, or read of
the persistent compilation cache, dies of a segmentation fault (``LLVM compilation error: Cannot allocate
memory`` first). A process that runs many experiments one after another (``python -m experiments.all``), or a
test worker that runs half the suite, gets there; :func:`release_compiled_programs` between units of work keeps
it below. What is dropped is compiled again when used again (or read back from the persistent cache).
"""

from __future__ import annotations

from pathlib import Path

import jax

_LIMIT_FILE = Path("/proc/sys/vm/max_map_count")
_MAPS_FILE = Path("/proc/self/maps")


def map_limit() -> int | None:
    """``vm.max_map_count``, the most memory mappings a process may hold; ``None`` where unknown (not Linux)."""
    try:
        return int(_LIMIT_FILE.read_text())
    except (OSError, ValueError):
        return None


def mapped_regions() -> int | None:
    """How many memory mappings this process holds now; ``None`` where unknown (not Linux)."""
    try:
        return _MAPS_FILE.read_bytes().count(b"\n")
    except OSError:
        return None


def release_compiled_programs(fraction: float = 0.5, *, limit: int | None = None) -> bool:
    """Drop JAX's compiled programs (``jax.clear_caches()``) when this process holds more than ``fraction`` of
    the memory mappings Linux allows (module docstring). Returns whether it did.

    Args:
      fraction: the share of the limit (in (0, 1]) above which the programs are dropped.
      limit: the limit to compare with (default :func:`map_limit`); nothing is dropped where it is unknown.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1]; got {fraction!r}")
    limit = map_limit() if limit is None else limit
    held = mapped_regions()
    if not limit or held is None or held <= fraction * limit:
        return False
    jax.clear_caches()
    return True


__all__ = ["map_limit", "mapped_regions", "release_compiled_programs"]
