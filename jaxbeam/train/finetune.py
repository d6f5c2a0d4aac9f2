"""Fine-tuning rules of Sec. IV-C2 (unsupervised fine-tuning of a pre-trained BERT).

* Same number of antennas N: load every pre-trained parameter.
* Different N: load the encoder blocks (``encoder``), keep the fresh random initialisation of the
  embedding block (``embed``, input width 2N) and the output layer (``head``, output width 2N).
* Frozen-encoder mode (Table IV): only ``embed`` and ``head`` are trained
  (:func:`trainable_labels` + :func:`jaxbeam.train.engine.make_optimizer`).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np

ANTENNA_DEPENDENT = ("embed", "head")


def _shapes(tree):
    return jax.tree.map(lambda x: tuple(np.shape(x)), tree)


def transfer_params(pretrained: dict, fresh: dict, *, reinit: Sequence[str] = ANTENNA_DEPENDENT) -> dict:
    """Parameters for fine-tuning: ``pretrained`` where it fits ``fresh``'s shapes, per the rules above.

    Args:
      pretrained: parameters of the pre-trained model (the ``"params"`` collection).
      fresh: freshly initialised parameters of the model to fine-tune (same architecture, maybe other N).
      reinit: top-level parts taken from ``fresh`` when the shapes differ (the N-dependent parts).

    Returns:
      ``pretrained`` if every shape matches; otherwise ``fresh`` for the parts in ``reinit`` and
      ``pretrained`` for all other parts.

    Raises:
      ValueError: the trees differ in structure, or a part outside ``reinit`` differs in shape
        (e.g. another F or L).
    """
    if set(pretrained) != set(fresh):
        raise ValueError(f"pretrained and fresh params differ in parts: {sorted(pretrained)} vs {sorted(fresh)}")
    if _shapes(pretrained) == _shapes(fresh):
        return pretrained
    out = {}
    for part in fresh:
        if part in reinit:
            out[part] = fresh[part]
        elif _shapes(pretrained[part]) == _shapes(fresh[part]):
            out[part] = pretrained[part]
        else:
            raise ValueError(
                f"pretrained params part {part!r} does not fit the new model (shapes differ); only {tuple(reinit)} "
                "may be re-initialised"
            )
    return out


def trainable_labels(params: dict, *, trainable: Sequence[str] = ANTENNA_DEPENDENT) -> dict:
    """A pytree like ``params`` labelling leaves under the top-level parts ``trainable`` as ``"train"`` and
    all others as ``"frozen"`` (for ``optax.multi_transform`` via ``make_optimizer(labels=...)``)."""
    unknown = set(trainable) - set(params)
    if unknown:
        raise ValueError(f"trainable names parts not in params: {sorted(unknown)}; parts are {sorted(params)}")
    return {
        part: jax.tree.map(lambda _, p=part: "train" if p in trainable else "frozen", sub)
        for part, sub in params.items()
    }
