"""Training data sources with a deterministic order: batch ``i`` of epoch ``e`` depends only on
``(seed, e, i)``, so a run restarted from a checkpoint at step ``s`` sees exactly the batches an
uninterrupted run would have seen.

* :class:`ArraySource`: a labelled (or unlabelled) data set held as a dict of arrays, reshuffled every
  epoch by a permutation seeded with ``(seed, epoch)``; the last incomplete batch is dropped.
* :class:`ChannelSource`: Rayleigh channels drawn on the fly (unsupervised losses need no labels).
* :func:`label_arrays`: a :class:`jaxbeam.data.format.LabelSet` as the batch dict the engine expects.
* :func:`symmetry_augment`: label-preserving random transforms of (H, W_label) for :class:`ArraySource`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

from jaxbeam.data.format import LabelSet


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
        ``rng = numpy.random.default_rng((seed, epoch, i, 1))`` (deterministic, so resume stays exact),
        e.g. :func:`symmetry_augment`.
    """

    def __init__(
        self,
        arrays: dict[str, np.ndarray],
        batch_size: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        transform: Callable[[dict, np.random.Generator], dict] | None = None,
    ):
        if "H" not in arrays or "P" not in arrays:
            raise ValueError(f"arrays must contain 'H' and 'P'; got keys {sorted(arrays)}")
        S = len(arrays["H"])
        for k, v in arrays.items():
            if len(v) != S:
                raise ValueError(f"arrays[{k!r}] has {len(v)} samples; arrays['H'] has {S}")
        if batch_size <= 0 or batch_size > S:
            raise ValueError(f"batch_size must be in [1, {S}] (the number of samples); got {batch_size}")
        self.arrays, self.batch_size, self.seed, self.shuffle = arrays, batch_size, seed, shuffle
        self.transform = transform
        self.steps_per_epoch = S // batch_size

    def __len__(self) -> int:
        return len(self.arrays["H"])

    def _order(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self))
        return np.random.default_rng([self.seed, epoch]).permutation(len(self))

    def epoch(self, epoch: int, *, start: int = 0) -> Iterator[dict[str, np.ndarray]]:
        """Batches ``start, start + 1, ..`` of epoch ``epoch``."""
        order = self._order(epoch)
        for i in range(start, self.steps_per_epoch):
            idx = np.sort(order[i * self.batch_size : (i + 1) * self.batch_size])
            batch = {k: np.asarray(v[idx]) for k, v in self.arrays.items()}
            if self.transform is not None:
                batch = self.transform(batch, np.random.default_rng([self.seed, epoch, i, 1]))
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

    def rotate(X):
        return np.take_along_axis(X * antenna, perm[:, None, :], axis=2)

    out = dict(batch)
    out["H"] = user * rotate(H)
    if "W_label" in batch:
        out["W_label"] = user * rotate(batch["W_label"])
    return out


class ChannelSource:
    """Rayleigh channels ``CN(0, 1)`` drawn on the fly, ``steps_per_epoch`` batches per epoch.

    Args:
      K, N: users and antennas.
      P: power budgets [W]; each sample's budget is drawn uniformly from them.
      batch_size: global batch size.
      steps_per_epoch: batches per epoch (an epoch is the unit of validation and checkpointing).
      seed: batch ``i`` of epoch ``e`` is drawn from ``numpy.random.default_rng((seed, e, i))``.
    """

    def __init__(self, K: int, N: int, P: Sequence[float], batch_size: int, steps_per_epoch: int, *, seed: int = 0):
        for name, v in (("K", K), ("N", N), ("batch_size", batch_size), ("steps_per_epoch", steps_per_epoch)):
            if v <= 0:
                raise ValueError(f"{name} must be positive; got {v}")
        self.K, self.N, self.P = K, N, np.asarray(P, np.float32).reshape(-1)
        self.batch_size, self.steps_per_epoch, self.seed = batch_size, steps_per_epoch, seed

    def epoch(self, epoch: int, *, start: int = 0) -> Iterator[dict[str, np.ndarray]]:
        B, K, N = self.batch_size, self.K, self.N
        for i in range(start, self.steps_per_epoch):
            rng = np.random.default_rng([self.seed, epoch, i])
            H = (
                rng.standard_normal((B, K, N), np.float32) + 1j * rng.standard_normal((B, K, N), np.float32)
            ) / np.sqrt(np.float32(2))
            yield {"H": H.astype(np.complex64), "P": rng.choice(self.P, B).astype(np.float32)}
