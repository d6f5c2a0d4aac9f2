"""No two random streams of one run coincide (#35, item 9): every numpy stream is tagged and of one length."""

import itertools

import numpy as np
import pytest

from jaxbeam.data import streams
from jaxbeam.train.sources import CurriculumSource, masked_channels


def test_the_sao_validation_set_is_not_a_training_batch():
    """The SAO job draws its validation set with seed ``cfg.seed + 1`` and window 1's curriculum with seed
    ``cfg.seed * 1000 + 1``: at the default seed 0 both are 1, and the untagged ``[1, 7]`` was numpy's
    ``[1, 7, 0]``, epoch 7, batch 0."""
    val = masked_channels(4, 4, [(2, 2)], 2, seed=1)
    src = CurriculumSource(4, 4, [2], [2], stage_epochs=1, batch_size=2, steps_per_epoch=1, seed=1)
    for epoch in range(10):
        batch = next(src.epoch(epoch))
        assert not np.allclose(batch["H"], val["H"]), epoch


def test_streams_are_distinct_across_tags_seeds_and_indices():
    seen = {}
    for tag in streams.TAGS:
        for seed in range(3):
            for idx in [(), (0,), (7,), (0, 0), (7, 0), (1, 7), (7, 1)]:
                e = streams.entropy(tag, seed, *idx)
                assert len(e) == 4
                key = (tag, seed, idx + (0,) * (2 - len(idx)))
                assert seen.setdefault(e, key) == key, (e, key, seen[e])
    a, b = (streams.stream("batch", 1, 7, 0).random(4) for _ in range(2))
    np.testing.assert_array_equal(a, b)  # deterministic (resume-exact)
    assert not any(
        np.allclose(streams.stream(t1, 1, 7).random(4), streams.stream(t2, 1, 7).random(4))
        for t1, t2 in itertools.combinations(streams.TAGS, 2)
    )


def test_bad_stream_arguments():
    with pytest.raises(ValueError, match="tag must be one of"):
        streams.stream("val", 0)
    with pytest.raises(ValueError, match="at most 2 indices"):
        streams.stream("batch", 0, 1, 2, 3)
    with pytest.raises(ValueError, match="ints >= 0"):
        streams.stream("batch", -1, 2)
