r"""Task sampling for multi-task pre-training of UBERT (Algorithm 1, Sec. V-C1, and the Fig. 6 comparison).

Each task (``jb.TASKS``: 0 = SR, 1 = MR, 2 = EE) has its own labelled data set; the task data sets may
share channels or not (these functions only need their sizes). A batch is described by two int32
arrays of length ``batch_size``: ``task`` (which data set) and ``index`` (which sample in it), so a
loader gathers sample ``b`` as ``datasets[task[b]][index[b]]``.

- :func:`uniform_task_batch` is Algorithm 1: every batch holds exactly ``batch_size / 3`` samples of
  each task. Tasks are interleaved (``0, 1, 2, 0, 1, 2, ...``), so every contiguous shard whose size is
  a multiple of 3 (e.g. a data-parallel device shard) is itself balanced.
- :func:`uniform_task_epoch` is the same scheme run as epochs: each task's data set is visited
  without replacement, ``batch_size / 3`` samples per batch, until the smallest task runs out.
- :func:`random_task_batch` is the "random sampling" baseline of Fig. 6: each sample's task is drawn
  independently and uniformly, so per-task counts fluctuate from batch to batch.

All are pure functions of a ``jax.random`` key (same key, same batch) and jit with static sizes.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxbeam.core.utility import TASKS

NUM_TASKS = len(TASKS)


def _is_int(v) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)


def _check_sizes(sizes_per_task: Sequence[int]) -> tuple[int, ...]:
    try:
        ok = all(_is_int(s) for s in sizes_per_task)
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(
            f"sizes_per_task must be {NUM_TASKS} ints, one data-set size per task {TASKS}; got {sizes_per_task}"
        )
    sizes = tuple(int(s) for s in sizes_per_task)
    if len(sizes) != NUM_TASKS:
        raise ValueError(f"sizes_per_task must give one data-set size per task {TASKS}; got {sizes_per_task!r}")
    if min(sizes) < 1:
        raise ValueError(f"sizes_per_task must all be >= 1; got {sizes}")
    return sizes


def _batch_size(batch_size) -> int:
    if not _is_int(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1; got {batch_size!r}")
    return int(batch_size)


def _per_task(batch_size: int) -> int:
    batch_size = _batch_size(batch_size)
    if batch_size < NUM_TASKS or batch_size % NUM_TASKS:
        raise ValueError(
            f"batch_size must be a positive multiple of the number of tasks ({NUM_TASKS}) for uniform task "
            f"sampling; got {batch_size}"
        )
    return batch_size // NUM_TASKS


def uniform_task_batch(key: jax.Array, sizes_per_task: Sequence[int], batch_size: int) -> tuple[jax.Array, jax.Array]:
    """One batch of Algorithm 1: exactly ``batch_size / 3`` samples from each task's data set.

    Within a batch, each task's samples are drawn without replacement (uniformly over its data set).

    Args:
      key: a ``jax.random`` key.
      sizes_per_task: static sizes of the SR, MR and EE data sets (in the order of ``jb.TASKS``).
      batch_size: B, a multiple of 3 (else ``ValueError``).

    Returns:
      ``(task, index)``: int32 ``(B,)`` each; ``task = [0, 1, 2, 0, 1, 2, ...]`` and ``index[b]`` is a
      sample of data set ``task[b]``.

    Raises:
      ValueError: on a ``batch_size`` that is not a multiple of 3, or a data set smaller than B / 3.
    """
    sizes = _check_sizes(sizes_per_task)
    m = _per_task(batch_size)
    if min(sizes) < m:
        raise ValueError(f"sizes_per_task {sizes}: every task needs >= batch_size / 3 = {m} samples")
    keys = jax.random.split(key, NUM_TASKS)
    cols = [jax.random.choice(keys[t], sizes[t], (m,), replace=False) for t in range(NUM_TASKS)]
    index = jnp.stack(cols, axis=-1).reshape(-1).astype(jnp.int32)  # interleaved: sample i of task t at 3i + t
    task = jnp.tile(jnp.arange(NUM_TASKS, dtype=jnp.int32), m)
    return task, index


def uniform_task_epoch(key: jax.Array, sizes_per_task: Sequence[int], batch_size: int) -> tuple[jax.Array, jax.Array]:
    """One epoch of Algorithm 1: balanced batches that visit each data set without replacement.

    The number of batches is ``min(sizes) // (B / 3)``; larger data sets contribute a fresh random
    subset each epoch.

    Args:
      key: a ``jax.random`` key (use a different one per epoch).
      sizes_per_task: static sizes of the SR, MR and EE data sets.
      batch_size: B, a multiple of 3 (else ``ValueError``).

    Returns:
      ``(task, index)``: int32 ``(num_batches, B)`` each, every row as in :func:`uniform_task_batch`.
    """
    sizes = _check_sizes(sizes_per_task)
    m = _per_task(batch_size)
    num_batches = min(sizes) // m
    if num_batches == 0:
        raise ValueError(f"sizes_per_task {sizes}: every task needs >= batch_size / 3 = {m} samples")
    keys = jax.random.split(key, NUM_TASKS)
    cols = [
        jax.random.permutation(keys[t], sizes[t])[: num_batches * m].reshape(num_batches, m) for t in range(NUM_TASKS)
    ]
    index = jnp.stack(cols, axis=-1).reshape(num_batches, batch_size).astype(jnp.int32)
    task = jnp.broadcast_to(jnp.tile(jnp.arange(NUM_TASKS, dtype=jnp.int32), m), (num_batches, batch_size))
    return task, index


def random_task_batch(key: jax.Array, sizes_per_task: Sequence[int], batch_size: int) -> tuple[jax.Array, jax.Array]:
    """Random task sampling (the Fig. 6 baseline): each sample's task is drawn uniformly and independently.

    The sample index is then drawn uniformly (with replacement) from that task's data set.

    Args:
      key: a ``jax.random`` key.
      sizes_per_task: static sizes of the SR, MR and EE data sets.
      batch_size: B >= 1 (any value).

    Returns:
      ``(task, index)``: int32 ``(B,)`` each; per-task counts are multinomial(B, 1/3, 1/3, 1/3).
    """
    sizes = _check_sizes(sizes_per_task)
    batch_size = _batch_size(batch_size)
    k_task, k_index = jax.random.split(key)
    task = jax.random.randint(k_task, (int(batch_size),), 0, NUM_TASKS, dtype=jnp.int32)
    u = jax.random.uniform(k_index, (int(batch_size),))
    index = jnp.floor(u * jnp.asarray(sizes, jnp.float32)[task]).astype(jnp.int32)
    index = jnp.minimum(index, jnp.asarray(sizes, jnp.int32)[task] - 1)
    return task, index
