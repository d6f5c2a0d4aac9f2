"""The fit loop: epochs of jitted data-parallel steps, validation every epoch, best weights kept,
orbax checkpoints for exact resume, a tqdm progress bar and a JSONL metrics log.

Exact resume: the data order depends only on ``(seed, epoch, batch index)`` (:mod:`.sources`), the
state (params, Adam state, step, RNG) and the best-so-far weights are checkpointed together, and a
restarted run skips to the checkpoint's step; so a run killed at any point and restarted ends with
exactly the parameters of an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from jaxbeam.train.checkpoint import Checkpointer
from jaxbeam.train.engine import Engine, Forward, LossFn, default_forward, make_optimizer


@dataclasses.dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
      state: the final train state (replicated on the mesh).
      best_params: parameters with the best validation utility (numpy; the final ones without validation).
      best_metric: that validation utility (``-inf`` without validation).
      history: one record per epoch (``epoch``, ``step``, ``loss``, ``train_seconds``, ``val_*``).
      engine: the :class:`Engine` (for evaluation with the same mesh and jitted steps).
    """

    state: dict
    best_params: Any
    best_metric: float
    history: list[dict]
    engine: Engine


def fit(
    model: nn.Module,
    loss_fn: LossFn,
    train,
    *,
    epochs: int,
    learning_rate: float,
    val: dict | None = None,
    workdir: str | Path | None = None,
    config: dict | None = None,
    seed: int = 0,
    init_params: Any | None = None,
    trainable_labels: Any | None = None,
    eval_batch_size: int = 1024,
    checkpoint_every: int = 500,
    log_every: int = 50,
    max_steps: int | None = None,
    max_train_seconds: float | None = None,
    callback: Callable[[dict, dict], None] | None = None,
    progress: bool = True,
    mesh: jax.sharding.Mesh | None = None,
    forward: Forward = default_forward,
) -> FitResult:
    """Train ``model`` on ``loss_fn`` over ``train``; resume from ``workdir`` if it holds a checkpoint.

    Args:
      model: a Flax module (BERT, UBERT, a baseline...), applied through ``forward``.
      loss_fn: ``loss_fn(W, batch) -> (loss (B,), {metric: (B,)})`` (:func:`jaxbeam.losses.make_loss`);
        its ``"utility"`` metric is the validation criterion (higher is better).
      train: a source with ``steps_per_epoch`` and ``epoch(e, start=i)`` (:mod:`jaxbeam.train.sources`).
      epochs: number of epochs; the cosine decay runs over ``epochs * steps_per_epoch`` steps.
      learning_rate: initial Adam learning rate.
      val: validation set as a dict of arrays (``"H"``, ``"P"``, maybe ``"W_label"``), evaluated every epoch.
      workdir: run directory for checkpoints, ``config.json`` and ``metrics.jsonl``; None = no files.
      config: JSON-serialisable run configuration saved as ``config.json``.
      seed: seed of the parameter initialisation.
      init_params: start from these parameters instead of a random initialisation (fine-tuning).
      trainable_labels: ``"train"`` / ``"frozen"`` labels per parameter (frozen-encoder fine-tuning).
      eval_batch_size: validation batch size.
      checkpoint_every: steps between "latest" checkpoints (one is also written at every epoch end).
      log_every: steps between JSONL / progress-bar updates.
      max_steps: stop (without a final checkpoint, like a killed run) once the global step reaches this.
      max_train_seconds: stop after this much training time (validation and checkpoint time excluded).
      callback: ``callback(state, record)`` after every epoch's validation (record as in ``history``).
      progress: show a tqdm progress bar.
      mesh: device mesh (default: all devices on a 1-D ``"data"`` axis).
      forward: how a batch is fed to the model (:func:`jaxbeam.train.engine.default_forward`).
    """
    steps_per_epoch = train.steps_per_epoch
    if epochs <= 0:
        raise ValueError(f"epochs must be > 0; got {epochs}")
    total_steps = epochs * steps_per_epoch
    tx = make_optimizer(learning_rate, total_steps, labels=trainable_labels)
    engine = Engine(model, loss_fn, tx, mesh=mesh, forward=forward)
    example = next(train.epoch(0))
    state = engine.init_state(jax.random.PRNGKey(seed), example, params=init_params)
    best_params = jax.device_get(state["params"])
    best_metric, best_epoch = -math.inf, -1

    ckpt = Checkpointer(workdir, config=config) if workdir is not None else None
    log_file = None
    if ckpt is not None:
        if ckpt.latest_step() is not None:
            target = {
                "state": state,
                "best_params": best_params,
                "best_metric": np.zeros((), np.float64),
                "best_epoch": np.zeros((), np.int64),
            }
            item = ckpt.restore_latest(target)
            state = engine.put_state(item["state"])
            best_params = jax.device_get(item["best_params"])
            best_metric, best_epoch = float(item["best_metric"]), int(item["best_epoch"])
        if jax.process_index() == 0:
            log_file = open(Path(workdir) / "metrics.jsonl", "a")  # noqa: SIM115 (closed in finally)

    last_saved = [ckpt.latest_step() if ckpt is not None else None]

    def save(step):
        if ckpt is not None and step != last_saved[0]:
            last_saved[0] = step
            item = {
                "state": state,
                "best_params": best_params,
                "best_metric": np.asarray(best_metric, np.float64),
                "best_epoch": np.asarray(best_epoch, np.int64),
            }
            ckpt.save_latest(step, item)

    def log(record):
        if log_file is not None:
            log_file.write(json.dumps(record) + "\n")
            log_file.flush()

    step = int(jax.device_get(state["step"]))
    history: list[dict] = []
    bar = tqdm(total=total_steps, initial=step, unit="step", disable=not progress, dynamic_ncols=True)
    train_seconds = 0.0
    stopped = killed = False
    try:
        for epoch in range(step // steps_per_epoch, epochs):
            start = step - epoch * steps_per_epoch
            t0 = time.perf_counter()
            losses = []
            for batch in train.epoch(epoch, start=start):
                state, metrics = engine.step(state, batch)
                step += 1
                losses.append(metrics["loss"])
                bar.update(1)
                if step % log_every == 0:
                    m = {k: float(v) for k, v in jax.device_get(metrics).items()}
                    log({"step": step, "epoch": epoch, **m})
                    bar.set_postfix(epoch=epoch, loss=f"{m['loss']:.4g}", val=f"{best_metric:.4g}")
                if step % checkpoint_every == 0 and step % steps_per_epoch:
                    save(step)  # epoch ends are saved after validation, below
                if max_steps is not None and step >= max_steps:
                    killed = True  # like a killed run: no validation, no final checkpoint
                    break
                if max_train_seconds is not None and train_seconds + time.perf_counter() - t0 >= max_train_seconds:
                    stopped = True
                    break
            mean_loss = float(jnp.mean(jnp.stack(losses))) if losses else float("nan")  # also syncs the device
            train_seconds += time.perf_counter() - t0
            if killed:
                break
            record = {"epoch": epoch, "step": step, "loss": mean_loss, "train_seconds": train_seconds}
            if val is not None:
                v = engine.evaluate(state["params"], val, batch_size=eval_batch_size)
                record.update({f"val_{k}": x for k, x in v.items()})
                if v["utility"] > best_metric:
                    best_metric, best_epoch = v["utility"], epoch
                    best_params = jax.device_get(state["params"])
                    if ckpt is not None:
                        ckpt.save_best(step, best_params)
                bar.set_postfix(epoch=epoch, loss=f"{mean_loss:.4g}", val=f"{v['utility']:.4g}")
            history.append(record)
            log(record)
            save(step)
            if callback is not None:
                callback(state, record)
            if stopped:
                break
        if val is None:
            best_params = jax.device_get(state["params"])
    finally:
        bar.close()
        if ckpt is not None:
            ckpt.close()
        if log_file is not None:
            log_file.close()
    return FitResult(state=state, best_params=best_params, best_metric=best_metric, history=history, engine=engine)
