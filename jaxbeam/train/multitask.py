r"""Multi-task training data for UBERT (Algorithm 1, Sec. V-C1) in the engine's source contract.

:class:`MultiTaskSource` takes one labelled data set per task (``jb.TASKS``: 0 = SR, 1 = MR, 2 = EE) and
yields batches ``{"H", "P", "task", "W_label"}`` (plus ``"mask"`` / ``"antenna_mask"`` when sizes are
mixed) for :func:`jaxbeam.train.fit`, with ``steps_per_epoch`` and ``epoch(e, start=i)`` like
:class:`jaxbeam.train.ArraySource`:

* ``sampling="uniform"`` is Algorithm 1: every batch holds exactly ``B / 3`` samples of each task
  (:func:`jaxbeam.train.task_sampling.uniform_task_epoch`: each task's data set is visited without replacement, one
  fresh permutation per epoch, until the smallest runs out; tasks interleaved ``0, 1, 2, 0, ...`` so every
  data-parallel shard whose size is a multiple of 3 is balanced too).
* ``sampling="random"`` is the Fig. 6 baseline (:func:`jaxbeam.train.task_sampling.random_task_batch`): each sample's
  task is drawn uniformly and independently, so per-task counts fluctuate between batches. It runs the
  same number of steps per epoch as the uniform scheme (``3 min(S_t) // B``), so the two compare at
  equal sample budgets.

Determinism: the index table of epoch ``e`` comes from ``fold_in(key(seed), e)`` (random sampling:
batch ``i`` from ``fold_in(fold_in(key(seed), e), i)``), and the optional ``transform`` gets
``stream("augment", seed, e, i)`` (:mod:`jaxbeam.data.streams`); so batch ``i`` of epoch ``e`` depends only on
``(seed, e, i)`` and a resumed run sees exactly the batches of an uninterrupted one.

**Same channels or not.** The task data sets are independent inputs; nothing here requires them to
share channels. :func:`jaxbeam.data.generate.generate_labels` draws channels from ``(seed, power level,
chunk)`` only, so SR, MR and EE label sets made with the same seed, K, N, P levels, sample count and
chunk size hold *the same channels* in the same order and the same 8:1:1 split (checked on the cpu
preset's (6, 12) sets); each channel then appears once per task with that task's label. Since each
task's data set is permuted independently per epoch, a batch does not hold the same channel under
several tasks except by chance.

**Mixed (K, N).** A task's data may be a list of array dicts of different sizes, and the tasks may have
different sizes: everything is zero-padded once, at construction, to the largest K and N (users and
antennas appended at the end), with boolean ``"mask"`` (B, K) and ``"antenna_mask"`` (B, N) fields,
which UBERT and :func:`jaxbeam.train.losses_multitask.make_multitask_loss` honour (:func:`pad_arrays`).
Label-preserving augmentation (:func:`jaxbeam.train.symmetry_augment`) permutes antennas and so would
move antenna padding off the end; a ``transform`` together with antenna padding is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import jax
import numpy as np

from jaxbeam.core.utility import TASKS
from jaxbeam.data.format import LabelSet
from jaxbeam.data.streams import stream
from jaxbeam.train import task_sampling
from jaxbeam.train.sources import resident_batches, symmetry_augment

SAMPLINGS = ("uniform", "random")
# one compiled index-table function per (sizes, batch size): cheap host-side sampling, no per-op dispatch
_uniform_epoch = jax.jit(task_sampling.uniform_task_epoch, static_argnums=(1, 2))
_random_batch = jax.jit(task_sampling.random_task_batch, static_argnums=(1, 2))


def pad_arrays(parts: Sequence[Mapping[str, np.ndarray]], K: int | None = None, N: int | None = None) -> dict:
    """Concatenate array dicts of possibly different (K, N) into one, zero-padded to a common size.

    Args:
      parts: dicts with ``"H"`` complex ``(S_i, K_i, N_i)``, ``"P"`` ``(S_i,)``, optional ``"W_label"``
        (shape of ``"H"``), ``"task"`` ``(S_i,)``, ``"mask"`` ``(S_i, K_i)``, ``"antenna_mask"`` ``(S_i, N_i)``.
      K, N: target size (default: the largest in ``parts``); must be >= every part's size.

    Returns:
      one dict, ``S = sum S_i`` samples; users / antennas appended at the end with zero channel and label
      entries; ``"mask"`` and ``"antenna_mask"`` are added when any padding happened (or a part had one).

    Raises:
      ValueError: empty ``parts``, inconsistent keys or shapes, or a target smaller than a part.
    """
    parts = list(parts)
    if not parts:
        raise ValueError("parts must hold at least one array dict")
    keys = set(parts[0])
    for i, p in enumerate(parts):
        if "H" not in p or "P" not in p:
            raise ValueError(f"parts[{i}] must contain 'H' and 'P'; got keys {sorted(p)}")
        if set(p) != keys:
            raise ValueError(f"parts[{i}] has keys {sorted(p)}; parts[0] has {sorted(keys)}")
        H = np.asarray(p["H"])
        if H.ndim != 3 or not np.iscomplexobj(H):
            raise ValueError(f"parts[{i}]['H'] must be complex (S, K, N); got {H.dtype} {H.shape}")
        if "W_label" in p and np.shape(p["W_label"]) != H.shape:
            raise ValueError(f"parts[{i}]['W_label'] must have the shape of H {H.shape}; got {np.shape(p['W_label'])}")
    Ks = [np.shape(p["H"])[1] for p in parts]
    Ns = [np.shape(p["H"])[2] for p in parts]
    K = max(Ks) if K is None else int(K)
    N = max(Ns) if N is None else int(N)
    if K < max(Ks) or N < max(Ns):
        raise ValueError(f"K, N = ({K}, {N}) must be >= the largest part size ({max(Ks)}, {max(Ns)})")
    padded = any(k != K for k in Ks) or any(n != N for n in Ns)
    out: dict[str, list] = {k: [] for k in keys}
    if padded or "mask" in keys:
        out.setdefault("mask", [])
    if padded or "antenna_mask" in keys:
        out.setdefault("antenna_mask", [])
    for p, k, n in zip(parts, Ks, Ns, strict=True):
        S = len(p["H"])
        for name in keys - {"mask", "antenna_mask"}:
            x = np.asarray(p[name])
            if name in ("H", "W_label"):
                x = np.pad(x, ((0, 0), (0, K - k), (0, N - n)))
            out[name].append(x)
        if "mask" in out:
            m = np.asarray(p["mask"], bool) if "mask" in p else np.ones((S, k), bool)
            out["mask"].append(np.pad(m, ((0, 0), (0, K - k))))
        if "antenna_mask" in out:
            a = np.asarray(p["antenna_mask"], bool) if "antenna_mask" in p else np.ones((S, n), bool)
            out["antenna_mask"].append(np.pad(a, ((0, 0), (0, N - n))))
    return {name: np.concatenate(v) for name, v in out.items()}


def _as_task_dict(data) -> dict[int, list]:
    """``{task id: [array dicts]}`` from a mapping keyed by task name or id (values a dict, LabelSet or list)."""
    if isinstance(data, Mapping):
        items = list(data.items())
    elif isinstance(data, Sequence) and len(data) == len(TASKS):
        items = list(enumerate(data))
    else:
        raise ValueError(f"task data must be a mapping {{task: data}} or one entry per task {TASKS}; got {type(data)}")
    out = {}
    for key, value in items:
        t = TASKS.index(key) if isinstance(key, str) and key in TASKS else key
        if not isinstance(t, int | np.integer) or not 0 <= t < len(TASKS):
            raise ValueError(f"task keys must be names in {TASKS} or ids 0..{len(TASKS) - 1}; got {key!r}")
        values = value if isinstance(value, list | tuple) else [value]
        dicts = []
        for v in values:
            if isinstance(v, LabelSet):
                v = {"H": np.asarray(v.H), "P": np.asarray(v.P, np.float32), "W_label": np.asarray(v.W)}
            if not isinstance(v, Mapping):
                raise ValueError(f"task data for {key!r} must be array dicts or LabelSets; got {type(v)}")
            dicts.append(dict(v))
        if not dicts:
            raise ValueError(f"task data for {key!r} is empty")
        out[int(t)] = dicts
    return out


def multitask_arrays(data, split: str | None = None) -> dict[str, np.ndarray]:
    """One array dict ``{"H", "P", "task", "W_label"[, "mask", "antenna_mask"]}`` holding every task's samples.

    Args:
      data: ``{task: LabelSet | array dict | list of them}`` with task a name (``"sr"``...) or id, or a
        sequence with one entry per task in the order of ``jb.TASKS``.
      split: ``"train"``, ``"val"`` or ``"test"`` to take that part of every :class:`LabelSet` (array
        dicts are taken whole); None = everything.

    Returns:
      the tasks' samples concatenated in task order (SR first), ``"task"`` int32 ``(S,)``; padded to the
      largest (K, N) with masks when sizes differ (:func:`pad_arrays`). For the validation set of a
      balanced run, give every task the same number of samples.
    """

    def part(x):
        if isinstance(x, list | tuple):
            return [part(v) for v in x]
        return x.split(split) if split and isinstance(x, LabelSet) else x

    data = {k: part(v) for k, v in data.items()} if isinstance(data, Mapping) else [part(v) for v in data]
    by_task = _as_task_dict(data)
    parts = []
    for t in sorted(by_task):
        for d in by_task[t]:
            parts.append({**d, "task": np.full(len(d["H"]), t, np.int32)})
    return pad_arrays(parts)


class MultiTaskSource:
    """Balanced multi-task mini-batches (Algorithm 1) or the random-sampling variant (Fig. 6).

    Args:
      data: one data set per task: ``{"sr": ..., "mr": ..., "ee": ...}`` (or ids 0, 1, 2, or a sequence in
        the order of ``jb.TASKS``); each a :class:`jaxbeam.data.format.LabelSet`, an array dict
        ``{"H", "P", "W_label"}`` or a list of them (several (K, N), padded; module docstring). All three
        tasks are required.
      batch_size: global batch size B (a multiple of 3 for ``"uniform"``).
      seed: sampling seed; batch ``i`` of epoch ``e`` depends only on ``(seed, e, i)``.
      sampling: ``"uniform"`` (Algorithm 1) or ``"random"`` (independent uniform task per sample).
      transform: optional ``transform(batch, rng) -> batch`` per batch (e.g.
        :func:`jaxbeam.train.symmetry_augment`), ``rng = stream("augment", seed, e, i)``.
      on_device: keep the three (padded) data sets on the devices, concatenated in task order
        (:attr:`resident`, placed once by the engine), and yield ``{"index", "task"}`` int32 ``(B,)``; the
        batch is gathered inside the jitted step (:attr:`prepare`), the same samples in the same order as on
        the host. ``transform`` must be None or :func:`jaxbeam.train.symmetry_augment`, which then runs on
        the device from per-sample keys ``"aug_key"`` (as :class:`jaxbeam.train.ArraySource`'s).

    Attributes:
      steps_per_epoch: ``min_t S_t // (B / 3)`` for ``"uniform"``; ``3 min_t S_t // B`` for ``"random"``.
      sizes: samples per task (SR, MR, EE).
      arrays: per task, the (padded) array dict.

    Batches: ``{"H" (B, K, N) complex64, "P" (B,), "task" int32 (B,), "W_label" (B, K, N)}`` plus
    ``"mask"`` (B, K) / ``"antenna_mask"`` (B, N) when sizes are mixed.
    """

    def __init__(
        self,
        data,
        batch_size: int,
        *,
        seed: int = 0,
        sampling: str = "uniform",
        transform: Callable[[dict, np.random.Generator], dict] | None = None,
        on_device: bool = False,
    ):
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}; got {sampling!r}")
        by_task = _as_task_dict(data)
        if sorted(by_task) != list(range(len(TASKS))):
            missing = [TASKS[t] for t in range(len(TASKS)) if t not in by_task]
            raise ValueError(f"data must hold a data set for every task {TASKS}; missing {missing}")
        for t, dicts in by_task.items():
            for d in dicts:
                if "W_label" not in d:
                    raise ValueError(f"data for task {TASKS[t]!r} has no 'W_label' (multi-task training is supervised)")
        Ks = [np.shape(d["H"])[1] for ds in by_task.values() for d in ds]
        Ns = [np.shape(d["H"])[2] for ds in by_task.values() for d in ds]
        K, N = max(Ks), max(Ns)
        self.arrays = [pad_arrays(by_task[t], K, N) for t in range(len(TASKS))]
        if any(set(a) != set(self.arrays[0]) for a in self.arrays):  # some tasks padded, others not
            self.arrays = [self._with_masks(a) for a in self.arrays]
        if transform is not None and any("antenna_mask" in a and not a["antenna_mask"].all() for a in self.arrays):
            raise ValueError("transform cannot be used with antenna padding (it permutes antennas); pass None")
        if on_device and transform not in (None, symmetry_augment):
            raise ValueError(f"on_device=True takes transform=None or symmetry_augment; got {transform!r}")
        self.sizes = tuple(len(a["H"]) for a in self.arrays)
        batch_size = int(batch_size)
        if sampling == "uniform":
            m = task_sampling._per_task(batch_size)  # ValueError unless B is a positive multiple of 3
            self.steps_per_epoch = min(self.sizes) // m
        else:
            if batch_size < 1:
                raise ValueError(f"batch_size must be >= 1; got {batch_size}")
            self.steps_per_epoch = len(TASKS) * min(self.sizes) // batch_size
        if self.steps_per_epoch < 1:
            raise ValueError(f"batch_size {batch_size} is too large for task data sets of sizes {self.sizes}")
        self.batch_size, self.seed, self.sampling, self.transform = batch_size, seed, sampling, transform
        self._table: tuple[int, np.ndarray, np.ndarray] | None = None
        self.on_device = bool(on_device)
        self._offsets = np.cumsum((0,) + self.sizes[:-1]).astype(np.int32)  # row of task t's sample 0
        self.resident = (
            {name: np.concatenate([a[name] for a in self.arrays]) for name in self.arrays[0]} if on_device else None
        )
        self.prepare = resident_batches(augment=transform is not None) if on_device else None

    @staticmethod
    def _with_masks(a: dict) -> dict:
        a = dict(a)
        S, K, N = a["H"].shape
        a.setdefault("mask", np.ones((S, K), bool))
        a.setdefault("antenna_mask", np.ones((S, N), bool))
        return a

    def __len__(self) -> int:
        return sum(self.sizes)

    def _epoch_key(self, epoch: int) -> jax.Array:
        return jax.random.fold_in(jax.random.key(self.seed), epoch)

    def batch_indices(self, epoch: int, i: int) -> tuple[np.ndarray, np.ndarray]:
        """``(task, index)`` int32 ``(B,)`` of batch ``i`` of epoch ``epoch`` (sample ``b`` is
        ``arrays[task[b]]`` row ``index[b]``)."""
        if not 0 <= i < self.steps_per_epoch:
            raise ValueError(f"i must be in [0, {self.steps_per_epoch}); got {i}")
        if self.sampling == "random":
            key = jax.random.fold_in(self._epoch_key(epoch), i)
            task, index = _random_batch(key, self.sizes, self.batch_size)
            return np.asarray(task), np.asarray(index)
        if self._table is None or self._table[0] != epoch:
            task, index = _uniform_epoch(self._epoch_key(epoch), self.sizes, self.batch_size)
            self._table = (epoch, np.asarray(task), np.asarray(index))
        return self._table[1][i], self._table[2][i]

    def epoch(self, epoch: int, *, start: int = 0) -> Iterator[dict[str, np.ndarray]]:
        """Batches ``start, start + 1, ..`` of epoch ``epoch``."""
        for i in range(start, self.steps_per_epoch):
            task, index = self.batch_indices(epoch, i)
            if self.on_device:
                batch = {"index": (self._offsets[task] + index).astype(np.int32), "task": task.astype(np.int32)}
                if self.transform is not None:
                    rng = stream("augment", self.seed, epoch, i)
                    batch["aug_key"] = rng.integers(0, 2**32, (len(task), 2), dtype=np.uint32)
                yield batch
                continue
            batch = {}
            for name in self.arrays[0]:
                first = self.arrays[0][name]
                out = np.empty((len(task),) + first.shape[1:], first.dtype)
                for t, a in enumerate(self.arrays):
                    sel = task == t
                    out[sel] = a[name][index[sel]]
                batch[name] = out
            batch["task"] = task.astype(np.int32)
            if self.transform is not None:
                batch = self.transform(batch, stream("augment", self.seed, epoch, i))
            yield batch
