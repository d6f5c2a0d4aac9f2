"""The training engine shared by every jaxbeam model: train state, jitted data-parallel steps, the fit loop,
orbax checkpoints and fine-tuning rules.

    from jaxbeam import train
    result = train.fit(model, loss_fn, train.ArraySource(arrays, 32), epochs=100, learning_rate=2e-4,
                       val=val_arrays, workdir="runs/bert")
"""

from jaxbeam.train.checkpoint import Checkpointer, CheckpointError, load_config, load_params
from jaxbeam.train.engine import (
    Engine,
    data_mesh,
    default_forward,
    eval_batches,
    eval_step,
    init_state,
    initialize_distributed,
    loss_and_metrics,
    make_optimizer,
    train_step,
)
from jaxbeam.train.finetune import trainable_labels, transfer_params
from jaxbeam.train.loop import FitResult, fit
from jaxbeam.train.multitask import MultiTaskSource, multitask_arrays, pad_arrays
from jaxbeam.train.sources import ArraySource, ChannelSource, example_batch, label_arrays, symmetry_augment

__all__ = [
    "ArraySource",
    "ChannelSource",
    "CheckpointError",
    "Checkpointer",
    "Engine",
    "FitResult",
    "MultiTaskSource",
    "data_mesh",
    "default_forward",
    "eval_batches",
    "eval_step",
    "example_batch",
    "fit",
    "init_state",
    "initialize_distributed",
    "label_arrays",
    "load_config",
    "load_params",
    "loss_and_metrics",
    "make_optimizer",
    "multitask_arrays",
    "pad_arrays",
    "symmetry_augment",
    "train_step",
    "trainable_labels",
    "transfer_params",
]
