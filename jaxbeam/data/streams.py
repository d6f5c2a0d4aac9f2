"""Named numpy random streams of the training shell: every stream is ``(tag, seed, a, b)``, one fixed length.

numpy pads a short seed sequence with zeros, so untagged sequences of different lengths can coincide:
``default_rng([seed + 1, 7])`` (a validation set) was ``default_rng([1, 7, 0])`` (epoch 7, batch 0 of a
training source seeded 1). Here each kind of stream has its own tag in the first entry and every sequence has
the same length, so two streams coincide only when tag, seed and indices all match.
"""

from __future__ import annotations

import numpy as np

TAGS = {"split": 1, "order": 2, "batch": 3, "augment": 4, "fixed_set": 5}
"""Stream kinds: the 8:1:1 split of a label set, an epoch's shuffle, a drawn training batch, a batch's
augmentation, a fixed (validation / test) set."""
_INDICES = 2


def stream(tag: str, seed: int, *indices: int) -> np.random.Generator:
    """The generator of stream ``tag`` for ``seed`` and up to two non-negative indices (e.g. epoch, batch)."""
    if tag not in TAGS:
        raise ValueError(f"tag must be one of {tuple(TAGS)}; got {tag!r}")
    if len(indices) > _INDICES:
        raise ValueError(f"at most {_INDICES} indices; got {indices!r}")
    words = [int(seed), *(int(i) for i in indices)]
    if any(w < 0 for w in words):
        raise ValueError(f"seed and indices must be ints >= 0; got seed={seed!r}, indices={indices!r}")
    entropy = [TAGS[tag], *words, *([0] * (_INDICES - len(indices)))]
    return np.random.default_rng(np.random.SeedSequence(entropy))


def entropy(tag: str, seed: int, *indices: int) -> tuple[int, ...]:
    """The seed sequence :func:`stream` uses (for tests that no two streams of a run coincide)."""
    return tuple(stream(tag, seed, *indices).bit_generator.seed_seq.entropy)


__all__ = ["TAGS", "entropy", "stream"]
