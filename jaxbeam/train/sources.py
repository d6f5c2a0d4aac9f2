"""Training data sources with a deterministic order: batch ``i`` of epoch ``e`` depends only on
``(seed, e, i)``, so a run restarted from a checkpoint at step ``s`` sees exactly the batches an
uninterrupted run would have seen.

* :class:`ArraySource`: a labelled (or unlabelled) data set held as a dict of arrays, reshuffled every
  epoch by a permutation seeded with ``(seed, epoch)``; the last incomplete batch is dropped. With
  ``on_device=True`` the data set is placed on the devices once and batches are sample indices, gathered
  (and augmented) inside the jitted step.
* :class:`ChannelSource`: Rayleigh channels drawn on the fly (unsupervised losses need no labels), on the
  host or (``on_device=True``) inside the jitted step from per-sample keys (:func:`device_channels`).
* :func:`label_arrays`: a :class:`jaxbeam.data.format.LabelSet` as the batch dict the engine expects.
* :func:`symmetry_augment`: label-preserving random transforms of (H, W_label) for :class:`ArraySource`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

from jaxbeam.data.format import LabelSet
from jaxbeam.data.streams import stream


def label_arrays(labels: LabelSet, *, with_labels: bool = True) -> dict[str, np.ndarray]:
    """``{"H", "P", "W_label"}`` from a label set (``W_label`` left out if ``with_labels`` is False)."""
    out = {"H": np.asarray(labels.H), "P": np.asarray(labels.P, np.float32)}
    if with_labels:
        out["W_label"] = np.asarray(labels.W)
    return out


class ArraySource:
    """Shuffled mini-batches of a data set given as a dict of arrays with a common leading axis.

    Args:
      arrays: ``{"H": (S, K, N), "P": (S,), ...}``; every entry is batched along axis 0.
      batch_size: global batch size.
      seed: shuffling seed (the permutation of epoch ``e`` is seeded with ``(seed, e)``).
      shuffle: False keeps the stored order.
      transform: optional ``transform(batch, rng) -> batch`` applied to every batch with
        ``rng = stream("augment", seed, epoch, i)`` (:mod:`jaxbeam.data.streams`; deterministic, so resume stays
        exact),
        e.g. :func:`symmetry_augment`.
      on_device: keep the data set on the devices (:attr:`resident`, placed once by the engine, replicated)
        and yield ``{"index": int32 (B,)}`` (4 bytes per sample cross to the device instead of the samples);
        :attr:`prepare` gathers the batch inside the jitted step. The same samples in the same order as on
        the host; ``transform`` must be None or :func:`symmetry_augment`, which then runs on the device from
        per-sample keys ``"aug_key"`` (uint32 ``(B, 2)``, 8 bytes per sample, drawn from the same ``rng``):
        transforms as deterministic as the host's, but other draws.
    """

    def __init__(
        self,
        arrays: dict[str, np.ndarray],
        batch_size: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        transform: Callable[[dict, np.random.Generator], dict] | None = None,
        on_device: bool = False,
    ):
        if "H" not in arrays or "P" not in arrays:
            raise ValueError(f"arrays must contain 'H' and 'P'; got keys {sorted(arrays)}")
        S = len(arrays["H"])
        for k, v in arrays.items():
            if len(v) != S:
                raise ValueError(f"arrays[{k!r}] has {len(v)} samples; arrays['H'] has {S}")
        if batch_size <= 0 or batch_size > S:
            raise ValueError(f"batch_size must be in [1, {S}] (the number of samples); got {batch_size}")
        if on_device and transform not in (None, symmetry_augment):
            raise ValueError(f"on_device=True takes transform=None or symmetry_augment; got {transform!r}")
        self.arrays, self.batch_size, self.seed, self.shuffle = arrays, batch_size, seed, shuffle
        self.transform = transform
        self.steps_per_epoch = S // batch_size
        self.on_device = bool(on_device)
        self.resident = {k: np.asarray(v) for k, v in arrays.items()} if self.on_device else None
        self.prepare = resident_batches(augment=transform is not None) if self.on_device else None

    def __len__(self) -> int:
        return len(self.arrays["H"])

    def _order(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self))
        return stream("order", self.seed, epoch).permutation(len(self))

    def epoch(self, epoch: int, *, start: int = 0) -> Iterator[dict[str, np.ndarray]]:
        """Batches ``start, start + 1, ..`` of epoch ``epoch``."""
        order = self._order(epoch)
        for i in range(start, self.steps_per_epoch):
            idx = np.sort(order[i * self.batch_size : (i + 1) * self.batch_size])
            if self.on_device:
                batch = {"index": idx.astype(np.int32)}
                if self.transform is not None:
                    rng = stream("augment", self.seed, epoch, i)
                    batch["aug_key"] = rng.integers(0, 2**32, (len(idx), 2), dtype=np.uint32)
                yield batch
                continue
            batch = {k: np.asarray(v[idx]) for k, v in self.arrays.items()}
            if self.transform is not None:
                batch = self.transform(batch, stream("augment", self.seed, epoch, i))
            yield batch


def symmetry_augment(batch: dict, rng: np.random.Generator) -> dict:
    r"""Random transforms of a labelled batch that keep every label optimal (data augmentation).

    Per sample, with a random permutation matrix :math:`\Pi` of the antennas, random antenna phases
    :math:`D_a = \mathrm{diag}(e^{j\theta_n})` and random user phases :math:`D_u = \mathrm{diag}(e^{j\phi_k})`:

    .. math:: H' = D_u H U, \quad W' = D_u W U, \quad U = D_a \Pi \ (\text{unitary}).

    Then :math:`G'_{ki} = h_k'^H w_i' = e^{j(\phi_i - \phi_k)} h_k^H w_i`: every gain keeps its magnitude,
    so SINRs, rates, SR / MR / EE and the transmit power of every beamformer are unchanged, and the
    optimiser of problem (3) for H' is the transformed optimiser for H. Rotating the label's rows with the
    user phases (rather than leaving them) keeps the solver's own phase convention (RZF / WMMSE map
    ``D_u H U`` to ``D_u W U``), which the matrix cosine of eq. 17 is sensitive to. The Rayleigh
    distribution of H is invariant as well. Entries other than ``"H"`` and ``"W_label"`` pass through.
    """
    H = batch["H"]
    B, K, N = H.shape
    perm = np.argsort(rng.random((B, N)), axis=1)
    antenna = np.exp(2j * np.pi * rng.random((B, 1, N))).astype(H.dtype)
    user = np.exp(2j * np.pi * rng.random((B, K, 1))).astype(H.dtype)

    return _transform(batch, perm, antenna, user, np.take_along_axis)


def _transform(batch: dict, perm, antenna, user, take_along_axis) -> dict:
    """``D_u X D_a Pi`` for ``X`` = ``"H"`` and ``"W_label"`` (:func:`symmetry_augment`), numpy or JAX."""

    def rotate(X):
        return take_along_axis(X * antenna, perm[:, None, :], axis=2)

    out = dict(batch)
    out["H"] = user * rotate(batch["H"])
    if "W_label" in batch:
        out["W_label"] = user * rotate(batch["W_label"])
    return out


def example_batch(source) -> dict[str, np.ndarray]:
    """The first sample of a source's first batch as the model sees it (``{"H", "P", ...}``, numpy, leading
    axis 1): expanded by the source's ``prepare`` where its batches are keys or indices."""
    batch = {k: np.asarray(v)[:1] for k, v in next(source.epoch(0)).items()}
    prepare = getattr(source, "prepare", None)
    if prepare is None:
        return batch
    import jax

    return jax.device_get(prepare(batch, getattr(source, "resident", None)))


def _symmetry_augment_device(batch: dict, keys) -> dict:
    """:func:`symmetry_augment` in JAX, one transform per sample drawn from its key (same law as the host's)."""
    import jax
    import jax.numpy as jnp

    H = batch["H"]
    K, N = H.shape[-2:]

    def draws(key):
        kp, ka, ku = jax.random.split(key, 3)
        return jax.random.permutation(kp, N), jax.random.uniform(ka, (N,)), jax.random.uniform(ku, (K,))

    perm, a, u = jax.vmap(draws)(keys)
    antenna = jnp.exp(2j * jnp.pi * a).astype(H.dtype)[:, None, :]
    user = jnp.exp(2j * jnp.pi * u).astype(H.dtype)[:, :, None]
    return _transform(batch, perm, antenna, user, jnp.take_along_axis)


def resident_batches(*, augment: bool = False) -> Callable[[dict, dict], dict]:
    """The ``prepare`` of an ``on_device`` :class:`ArraySource`: a pure function that replaces a batch's
    ``"index"`` (int32 ``(B,)``) by the rows of every resident array and, with ``augment``, applies
    :func:`symmetry_augment` from the per-sample keys ``"aug_key"``; a batch without ``"index"`` (a
    validation set) passes unchanged."""

    def prepare(batch: dict, resident: dict | None = None) -> dict:
        if "index" not in batch:
            return batch
        import jax
        import jax.numpy as jnp

        out = {k: v for k, v in batch.items() if k not in ("index", "aug_key")}
        out.update({k: jnp.take(v, batch["index"], axis=0) for k, v in (resident or {}).items()})
        if augment:
            keys = jax.random.wrap_key_data(batch["aug_key"], impl="threefry2x32")
            out = _symmetry_augment_device(out, keys)
        return out

    return prepare


def device_channels(K: int, N: int) -> Callable[[dict], dict]:
    """The ``prepare`` of an ``on_device`` :class:`ChannelSource`: a pure function that replaces a batch's
    ``"H_key"`` (uint32 ``(B, 2)``, one raw threefry key per sample) by ``"H"``, complex64 ``(B, K, N)``
    ``CN(0, 1)`` channels (:func:`jaxbeam.rayleigh` per sample), and leaves a batch without it unchanged.
    Per-sample keys make a sample's channel independent of the batch it is in and of how the batch is
    sharded over devices."""
    import jax

    from jaxbeam.core.channels import rayleigh

    def prepare(batch: dict, resident: dict | None = None) -> dict:  # (no resident data)
        if "H_key" not in batch:
            return batch
        keys = jax.random.wrap_key_data(batch["H_key"], impl="threefry2x32")
        out = {k: v for k, v in batch.items() if k != "H_key"}
        out["H"] = jax.vmap(lambda k: rayleigh(k, (), K, N))(keys)
        return out

    return prepare


class ChannelSource:
    """Rayleigh channels ``CN(0, 1)`` drawn on the fly, ``steps_per_epoch`` batches per epoch.

    Args:
      K, N: users and antennas.
      P: power budgets [W]; each sample's budget is drawn uniformly from them.
      batch_size: global batch size.
      steps_per_epoch: batches per epoch (an epoch is the unit of validation and checkpointing).
      seed: batch ``i`` of epoch ``e`` is drawn from ``stream("batch", seed, e, i)`` (:mod:`jaxbeam.data.streams`).
      on_device: yield ``{"H_key", "P"}`` instead of ``{"H", "P"}``: 8 bytes of key per sample cross to the
        device instead of ``8 K N`` bytes of channel, and the engine draws the channels inside the jitted
        step (:attr:`prepare`, :func:`device_channels`); other channels than the host draw's, as
        deterministic (resume-exact) and independent of the device count.
    """

    def __init__(
        self,
        K: int,
        N: int,
        P: Sequence[float],
        batch_size: int,
        steps_per_epoch: int,
        *,
        seed: int = 0,
        on_device: bool = False,
    ):
        for name, v in (("K", K), ("N", N), ("batch_size", batch_size), ("steps_per_epoch", steps_per_epoch)):
            if v <= 0:
                raise ValueError(f"{name} must be positive; got {v}")
        self.K, self.N, self.P = K, N, np.asarray(P, np.float32).reshape(-1)
        self.batch_size, self.steps_per_epoch, self.seed = batch_size, steps_per_epoch, seed
        self.on_device = bool(on_device)
        self.prepare = device_channels(K, N) if self.on_device else None

    def epoch(self, epoch: int, *, start: int = 0) -> Iterator[dict[str, np.ndarray]]:
        B, K, N = self.batch_size, self.K, self.N
        for i in range(start, self.steps_per_epoch):
            rng = stream("batch", self.seed, epoch, i)
            if self.on_device:
                keys = rng.integers(0, 2**32, (B, 2), dtype=np.uint32)
                yield {"H_key": keys, "P": rng.choice(self.P, B).astype(np.float32)}
                continue
            H = (
                rng.standard_normal((B, K, N), np.float32) + 1j * rng.standard_normal((B, K, N), np.float32)
            ) / np.sqrt(np.float32(2))
            yield {"H": H.astype(np.complex64), "P": rng.choice(self.P, B).astype(np.float32)}


def _masked_batch(
    rng: np.random.Generator, Ks: np.ndarray, Ns: np.ndarray, K_max: int, N_max: int, channel: str = "rayleigh"
) -> dict:
    """``(B, K_max, N_max)`` channels with ``K_max - K`` users and ``N_max - N`` antennas per sample masked out
    at random positions (002 Sec. III-C2): masked rows and columns are zero. ``channel``: ``"rayleigh"``
    (drawn by ``rng``) or another source of :data:`jaxbeam.core.channels.CHANNELS` with its default parameters
    (drawn by :func:`jaxbeam.core.channels.draw_channels` from a key that ``rng`` draws)."""
    B = len(Ks)
    if channel == "rayleigh":
        H = rng.standard_normal((B, K_max, N_max), np.float32) + 1j * rng.standard_normal((B, K_max, N_max), np.float32)
        H = (H / np.sqrt(np.float32(2))).astype(np.complex64)
    else:
        import jax

        from jaxbeam.core.channels import draw_channels

        key = jax.random.key(int(rng.integers(0, 2**31 - 1)))
        H = np.asarray(draw_channels(channel, key, (B,), K_max, N_max))
    # a random subset of size K per row: the K smallest of i.i.d. uniforms
    user = np.argsort(np.argsort(rng.random((B, K_max)), axis=1), axis=1) < Ks[:, None]
    antenna = np.argsort(np.argsort(rng.random((B, N_max)), axis=1), axis=1) < Ns[:, None]
    H = H * (user[:, :, None] & antenna[:, None, :])
    return {"H": H, "mask": user, "antenna_mask": antenna}


class CurriculumSource:
    """Masked Rayleigh channels on the curriculum of paper 002 (Sec. III-C2-3, Algorithm 1 lines 5-14).

    Epoch ``e`` trains masking stage ``s = e // stage_epochs`` of the schedule ``K_schedule x N_schedule``
    (users outer, antennas inner, easiest first; after the last stage it stays there). Every batch holds
    ``batch_size - replay`` samples of stage ``s`` and ``replay`` samples of stages drawn uniformly from
    ``0 .. s - 1`` (sample replay; none at stage 0), each with random masked users and antennas.
    Batch ``i`` of epoch ``e`` is drawn from ``stream("batch", seed, e, i)`` (:mod:`jaxbeam.data.streams`;
    resume-exact).

    Args:
      K_max, N_max: the model's K_m, N_m (shape of every batch).
      K_schedule, N_schedule: increasing active users and antennas per stage (002: 8, 16, .., 40).
      stage_epochs: T_m, epochs per masking stage (002: 10).
      batch_size, steps_per_epoch: global batch and batches per epoch.
      replay: replayed samples per batch (of ``batch_size``).
      P: power budget [W] of every sample.
      seed: base seed.
      channel: the channel source (``"rayleigh"``, or a source of :data:`jaxbeam.core.channels.CHANNELS` with
        its default parameters, drawn over all ``K_max x N_max`` entries before masking).
    """

    def __init__(
        self,
        K_max: int,
        N_max: int,
        K_schedule: Sequence[int],
        N_schedule: Sequence[int],
        *,
        stage_epochs: int,
        batch_size: int,
        steps_per_epoch: int,
        replay: int = 0,
        P: float = 1.0,
        seed: int = 0,
        channel: str = "rayleigh",
    ):
        from jaxbeam.core.channels import channel_params

        channel_params(channel)  # ValueError for an unknown source
        for name, v in (
            ("stage_epochs", stage_epochs),
            ("batch_size", batch_size),
            ("steps_per_epoch", steps_per_epoch),
        ):
            if not isinstance(v, int) or v <= 0:
                raise ValueError(f"{name} must be a positive int; got {v!r}")
        if not 0 <= replay < batch_size:
            raise ValueError(f"replay must be in [0, batch_size = {batch_size}); got {replay}")
        for name, sched, top in (("K_schedule", K_schedule, K_max), ("N_schedule", N_schedule, N_max)):
            if not sched or any(not 1 <= k <= top for k in sched) or list(sched) != sorted(set(sched)):
                raise ValueError(f"{name} must be increasing values in [1, {top}]; got {list(sched)}")
        self.K_max, self.N_max = K_max, N_max
        self.stages = [(k, n) for k in K_schedule for n in N_schedule]
        self.stage_epochs, self.batch_size, self.steps_per_epoch = stage_epochs, batch_size, steps_per_epoch
        self.replay, self.P, self.seed, self.channel = replay, float(P), seed, channel

    @property
    def epochs(self) -> int:
        """Epochs to visit every stage once (002's T_w = |K| |N| T_m)."""
        return len(self.stages) * self.stage_epochs

    def stage(self, epoch: int) -> int:
        return min(epoch // self.stage_epochs, len(self.stages) - 1)

    def epoch(self, epoch: int, *, start: int = 0) -> Iterator[dict[str, np.ndarray]]:
        s = self.stage(epoch)
        B, R = self.batch_size, self.replay if s > 0 else 0
        stages = np.asarray(self.stages)
        for i in range(start, self.steps_per_epoch):
            rng = stream("batch", self.seed, epoch, i)
            idx = np.concatenate([np.full(B - R, s), rng.integers(0, max(s, 1), R)])
            batch = _masked_batch(rng, stages[idx, 0], stages[idx, 1], self.K_max, self.N_max, self.channel)
            batch["P"] = np.full(B, self.P, np.float32)
            yield batch


class SystemsSource:
    """Channels at a mix of system sizes: each sample's ``(K, N)`` drawn uniformly from ``systems`` and masked
    inside ``max K x max N`` at random positions (as :class:`CurriculumSource`'s batches, without stages).

    Batch ``i`` of epoch ``e`` is drawn from ``stream("batch", seed, e, i)`` (resume-exact).

    Args:
      systems: the ``(K, N)`` pairs.
      batch_size, steps_per_epoch: global batch and batches per epoch.
      P: power budget [W] of every sample.
      seed: base seed.
      channel: ``"rayleigh"`` or a source of :data:`jaxbeam.core.channels.CHANNELS` (default parameters).
    """

    def __init__(
        self,
        systems: Sequence[tuple[int, int]],
        *,
        batch_size: int,
        steps_per_epoch: int,
        P: float = 1.0,
        seed: int = 0,
        channel: str = "rayleigh",
    ):
        from jaxbeam.core.channels import channel_params

        channel_params(channel)  # ValueError for an unknown source
        self.systems = np.asarray(systems, np.int64).reshape(-1, 2)
        if len(self.systems) == 0 or self.systems.min() < 1:
            raise ValueError(f"systems must be (K, N) pairs of positive ints; got {list(map(tuple, self.systems))}")
        for name, v in (("batch_size", batch_size), ("steps_per_epoch", steps_per_epoch)):
            if not isinstance(v, int) or v <= 0:
                raise ValueError(f"{name} must be a positive int; got {v!r}")
        self.K_max, self.N_max = (int(x) for x in self.systems.max(axis=0))
        self.batch_size, self.steps_per_epoch = batch_size, steps_per_epoch
        self.P, self.seed, self.channel = float(P), seed, channel

    def epoch(self, epoch: int, *, start: int = 0) -> Iterator[dict[str, np.ndarray]]:
        for i in range(start, self.steps_per_epoch):
            rng = stream("batch", self.seed, epoch, i)
            c = self.systems[rng.integers(0, len(self.systems), self.batch_size)]
            batch = _masked_batch(rng, c[:, 0], c[:, 1], self.K_max, self.N_max, self.channel)
            batch["P"] = np.full(self.batch_size, self.P, np.float32)
            yield batch


def masked_channels(
    K_max: int,
    N_max: int,
    configs: Sequence[tuple[int, int]],
    per_config: int,
    *,
    P: float = 1.0,
    seed: int = 0,
    channel: str = "rayleigh",
) -> dict[str, np.ndarray]:
    """A fixed set of masked channels: ``per_config`` samples of every ``(K, N)`` in ``configs``, with random
    masked positions (002's test set, Algorithm 1 line 21); keys as :class:`CurriculumSource` batches."""
    rng = stream("fixed_set", seed)
    c = np.repeat(np.asarray(configs, np.int64).reshape(-1, 2), per_config, axis=0)
    out = _masked_batch(rng, c[:, 0], c[:, 1], K_max, N_max, channel)
    out["P"] = np.full(len(c), P, np.float32)
    return out
