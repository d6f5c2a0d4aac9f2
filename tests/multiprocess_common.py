"""The program run by every process of tests/test_multiprocess.py and by its 1-process reference."""

import jax
import numpy as np
import optax

import jaxbeam as jb
from jaxbeam import train
from jaxbeam.train import losses

K, N, B = 3, 4, 16
# 2 processes x 1 CPU device against 1 process x 2 devices: the multi-process path (jax.distributed, global
# arrays from process-local rows, collectives across processes, checkpoints written by process 0 and
# synchronised) is the same for any count; 2 x 4 against 1 x 8 cost several times as much on 2 cores
PROCESSES, LOCAL_DEVICES = 2, 1


def model():
    return jb.models.BERT(num_antennas=N, features=16, num_layers=2, num_heads=2)


def flat(tree):
    tree = jax.tree.map(np.asarray, jax.device_get(tree))
    return {jax.tree_util.keystr(p): x for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]}


def sgd_steps(steps=3):
    """3 SGD steps of the Engine on the same global batches in every process; the final parameters."""
    src = train.ChannelSource(K, N, [1.0, 2.0], B, steps, seed=11)
    eng = train.Engine(model(), losses.make_loss("sr", supervised=False), optax.sgd(3e-2))
    state = None
    for batch in src.epoch(0):
        if state is None:
            state = eng.init_state(jax.random.PRNGKey(0), batch)
        state, _ = eng.step(state, batch)
    return flat(state["params"])


def fit_run(workdir):
    """``train.fit`` (Adam) with validation and checkpoints every 2 steps; the final and best parameters."""
    src = train.ChannelSource(K, N, [1.0], B, 4, seed=12)
    val = next(train.ChannelSource(K, N, [1.0], 24, 1, seed=13).epoch(0))
    res = train.fit(
        model(), losses.make_loss("sr", supervised=False), src, epochs=2, learning_rate=3e-3, val=val,
        workdir=workdir, checkpoint_every=2, log_every=1, progress=False,
    )  # fmt: skip
    return {**{f"final{k}": v for k, v in flat(res.state["params"]).items()},
            **{f"best{k}": v for k, v in flat(res.best_params).items()}}  # fmt: skip
