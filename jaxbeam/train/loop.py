"""The fit loop: epochs of jitted data-parallel steps, validation every epoch, best weights kept,
orbax checkpoints for exact resume, a tqdm progress bar and a JSONL metrics log.

Exact resume: the data order depends only on ``(seed, epoch, batch index)`` (:mod:`.sources`); the
state (params, Adam state, step, RNG), the best-so-far weights and metric, the history and the training
seconds spent are checkpointed together, in one atomic checkpoint per step (:mod:`.checkpoint`); a
restarted run continues from the newest readable checkpoint and cuts ``metrics.jsonl`` back to its step.
So a run killed at any instant (SIGKILL included) and restarted ends with exactly the parameters, best
parameters, history and log (timing fields aside) of an uninterrupted run; ``tests/test_resume.py``
checks this for BERT, UBERT and frozen-encoder fine-tuning.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from tqdm.auto import tqdm

from jaxbeam.train.checkpoint import Checkpointer
from jaxbeam.train.engine import Engine, Forward, LossFn, default_forward, make_optimizer
from jaxbeam.train.task_weighting import DynamicWeightAverage


@dataclasses.dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
      state: the final train state (replicated on the mesh).
      best_params: parameters with the best validation utility (numpy; the final ones without validation).
      best_metric: that validation utility (``-inf`` without validation).
      history: one record per epoch (``epoch``, ``step``, ``loss``, ``train_seconds``, ``val_*``), those run
        before a resume included; ``train_seconds`` is cumulative over all runs of the workdir.
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
    final_learning_rate: float = 0.0,
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
    steps_per_call: int = 1,
    task_weighting: DynamicWeightAverage | None = None,
) -> FitResult:
    """Train ``model`` on ``loss_fn`` over ``train``; resume from ``workdir`` if it holds a checkpoint.

    Args:
      model: a Flax module (BERT, UBERT, a baseline...), applied through ``forward``.
      loss_fn: ``loss_fn(W, batch) -> (loss (B,), {metric: (B,)})`` (:func:`jaxbeam.train.losses.make_loss`);
        its ``"utility"`` metric is the validation criterion (higher is better).
      train: a source with ``steps_per_epoch`` and ``epoch(e, start=i)`` (:mod:`jaxbeam.train.sources`); its
        ``prepare`` and ``resident`` attributes, if set, map every batch inside the jitted steps (:class:`Engine`).
      epochs: number of epochs; the cosine decay runs over ``epochs * steps_per_epoch`` steps.
      learning_rate: initial Adam learning rate.
      final_learning_rate: where the cosine decay ends (default 0).
      val: validation set as a dict of arrays (``"H"``, ``"P"``, maybe ``"W_label"``), evaluated every epoch.
      workdir: run directory for checkpoints, ``config.json`` and ``metrics.jsonl``; None = no files.
        Raises :class:`jaxbeam.train.CheckpointError` if it holds checkpoints and none is readable.
      config: JSON-serialisable run configuration saved as ``config.json``.
      seed: seed of the parameter initialisation.
      init_params: start from these parameters instead of a random initialisation (fine-tuning).
      trainable_labels: ``"train"`` / ``"frozen"`` labels per parameter (frozen-encoder fine-tuning).
      eval_batch_size: validation batch size.
      checkpoint_every: steps between "latest" checkpoints (one is also written at every epoch end).
      log_every: steps between JSONL / progress-bar updates.
      max_steps: stop (without a final checkpoint, like a killed run) once the global step reaches this.
      max_train_seconds: stop after this much training time [s] (compilation, validation and checkpoint
        time excluded),
        counted over every run of ``workdir``: the seconds spent are checkpointed, so a killed run resumes
        with what is left of its budget (one step's time may be lost with the kill, never granted twice).
      callback: ``callback(state, record)`` after every epoch's validation (record as in ``history``).
      progress: show a tqdm progress bar.
      mesh: device mesh (default: all devices on a 1-D ``"data"`` axis).
      forward: how a batch is fed to the model (:func:`jaxbeam.train.engine.default_forward`).
      steps_per_call: optimizer steps per dispatch (:attr:`Engine.train_chunk`, a ``lax.scan`` over that many
        stacked batches): the same parameters as one step per call (to float32 round-off), the same
        checkpoints, resume and per-step log; chunks stop at checkpoint steps, ``max_steps`` and epoch ends,
        and the clock of ``max_train_seconds`` is read after each chunk.
      task_weighting: a :class:`jaxbeam.train.task_weighting.DynamicWeightAverage` (multi-task batches): each
        epoch's task weights from the history, added to its batches as ``"task_weight"``; the history records
        the epoch means of the per-task losses (``train_loss_<task>``) and the weights (``task_weights``).
    """
    if isinstance(steps_per_call, bool) or not isinstance(steps_per_call, int) or steps_per_call < 1:
        raise ValueError(f"steps_per_call must be an int >= 1; got {steps_per_call!r}")
    steps_per_epoch = train.steps_per_epoch
    if epochs <= 0:
        raise ValueError(f"epochs must be > 0; got {epochs}")
    if max_train_seconds is not None and not max_train_seconds > 0:
        raise ValueError(f"max_train_seconds must be > 0 or None; got {max_train_seconds}")
    total_steps = epochs * steps_per_epoch
    tx = make_optimizer(learning_rate, total_steps, labels=trainable_labels, final_learning_rate=final_learning_rate)
    engine = Engine(model, loss_fn, tx, mesh=mesh, forward=forward, source=train)
    example = next(train.epoch(0))
    tracked = () if task_weighting is None else task_weighting.keys  # metrics whose epoch means DWA reads
    if task_weighting is not None:
        example = task_weighting.attach(example, task_weighting.weights([]))
    state = engine.init_state(jax.random.PRNGKey(seed), example, params=init_params)
    best_params = jax.device_get(state["params"])
    best_metric, best_epoch = -math.inf, -1
    history: list[dict] = []
    train_seconds = 0.0  # training time so far, over all runs of this workdir (checkpointed)
    epoch_losses: list = []  # the step losses of the restored epoch before the restored step
    epoch_tracked: dict = {}  # the same for the tracked metrics

    ckpt = Checkpointer(workdir, config=config) if workdir is not None else None
    log_file = None
    last_saved = [None]
    if ckpt is not None:
        try:
            restored = ckpt.restore({"state": state, "best_params": best_params})
        except BaseException:
            ckpt.close()
            raise
        if restored is not None:
            last_saved[0], arrays, meta = restored
            state = engine.put_state(arrays["state"])
            best_params = jax.device_get(arrays["best_params"])
            best_metric, best_epoch = float(meta["best_metric"]), int(meta["best_epoch"])
            history = list(meta["history"])
            train_seconds = float(meta["train_seconds"])
            epoch_losses = [jnp.asarray(meta["epoch_losses"], jnp.float32)] if meta.get("epoch_losses") else []
            epoch_tracked = {k: [jnp.asarray(v, jnp.float32)] for k, v in meta.get("epoch_metrics", {}).items() if v}
        if jax.process_index() == 0:
            log_path = Path(workdir) / "metrics.jsonl"
            _truncate_log(log_path, int(jax.device_get(state["step"])))
            log_file = open(log_path, "a")  # noqa: SIM115 (closed in finally)

    def save(step, seconds, losses=(), tracked_steps=None, *, force=False):
        if ckpt is not None and (force or step != last_saved[0]):
            last_saved[0] = step
            arrays = {"state": state, "best_params": best_params}
            meta = {
                "best_metric": best_metric,
                "best_epoch": best_epoch,
                "train_seconds": seconds,
                "history": history,
                "epoch_losses": [float(x) for x in jax.device_get(_flat(losses))] if losses else [],  # epoch mean
                "epoch_metrics": {
                    k: [float(x) for x in jax.device_get(_flat(v))] for k, v in (tracked_steps or {}).items() if v
                },
            }
            ckpt.save(step, arrays, meta)

    def log(record):
        if log_file is not None:
            log_file.write(json.dumps(record) + "\n")
            log_file.flush()

    step = int(jax.device_get(state["step"]))
    bar = tqdm(total=total_steps, initial=step, unit="step", disable=not progress, dynamic_ncols=True)
    stopped = max_train_seconds is not None and train_seconds >= max_train_seconds  # budget spent before a kill
    killed = max_steps is not None and step >= max_steps
    try:
        if max_train_seconds is not None and not (stopped or killed or step >= total_steps):
            # compile the step outside the clock: one step on a copy of the state, discarded
            jax.block_until_ready(engine.train_step(jax.tree.map(jnp.copy, state), engine.put_batch(example)))
        for epoch in range(step // steps_per_epoch, epochs):
            if stopped or killed:
                break
            start = step - epoch * steps_per_epoch
            t0 = time.perf_counter()  # train_seconds + (now - t0) = training time so far
            losses = epoch_losses if start else []  # a resumed epoch's mean counts its steps before the kill
            per_key = {k: list(epoch_tracked.get(k, [])) if start else [] for k in tracked}
            batches = iter(train.epoch(epoch, start=start))
            if task_weighting is not None:
                weights = task_weighting.weights(history)
                batches = (task_weighting.attach(b, weights) for b in batches)
            while True:
                # a chunk never crosses a checkpoint step or max_steps (boundaries of the global step, so a
                # resumed run cuts the same chunks), nor the epoch's end
                n = min(steps_per_call, checkpoint_every - step % checkpoint_every)
                if max_steps is not None:
                    n = min(n, max_steps - step)
                chunk = list(itertools.islice(batches, n))  # n >= 1: the loop stops at max_steps
                if not chunk:
                    break
                if len(chunk) == 1:  # metrics are scalars
                    state, metrics = engine.step(state, chunk[0])
                else:  # metrics are (n,)
                    state, metrics = engine.steps(state, chunk)
                first = step
                step += len(chunk)
                losses.append(metrics["loss"])
                for k in tracked:
                    per_key[k].append(metrics[k])
                bar.update(len(chunk))
                logged = [s for s in range(first + 1, step + 1) if s % log_every == 0]
                if logged:
                    host = jax.device_get(metrics)
                    for s in logged:
                        m = {k: float(v if v.ndim == 0 else v[s - first - 1]) for k, v in host.items()}
                        log({"step": s, "epoch": epoch, **m})
                    bar.set_postfix(epoch=epoch, loss=f"{m['loss']:.4g}", val=f"{best_metric:.4g}")
                if step % checkpoint_every == 0 and step % steps_per_epoch:  # epoch ends: after validation
                    jax.block_until_ready(state)
                    t_save = time.perf_counter()
                    save(step, train_seconds + t_save - t0, losses, per_key)
                    t0 += time.perf_counter() - t_save  # checkpoint time is not training time
                if max_steps is not None and step >= max_steps:
                    killed = True  # like a killed run: no validation, no final checkpoint
                    break
                if max_train_seconds is not None and train_seconds + time.perf_counter() - t0 >= max_train_seconds:
                    stopped = True
                    break
            mean_loss = float(jnp.mean(_flat(losses))) if losses else float("nan")  # also syncs the device
            train_seconds += time.perf_counter() - t0
            if killed:
                break
            record = {"epoch": epoch, "step": step, "loss": mean_loss, "train_seconds": train_seconds}
            record.update({f"train_{k}": float(jnp.mean(_flat(v))) for k, v in per_key.items() if v})
            if task_weighting is not None:
                record["task_weights"] = [float(x) for x in weights]
            if val is not None:
                v = engine.evaluate(state["params"], val, batch_size=eval_batch_size)
                record.update({f"val_{k}": x for k, x in v.items()})
                if v["utility"] > best_metric:
                    best_metric, best_epoch = v["utility"], epoch
                    best_params = jax.device_get(state["params"])
                bar.set_postfix(epoch=epoch, loss=f"{mean_loss:.4g}", val=f"{v['utility']:.4g}")
            history.append(record)
            log(record)
            # (force: re-saves a step saved mid-epoch just before a clock stop)
            mid = step % steps_per_epoch  # stopped on the clock inside the epoch: keep its partial means
            save(step, train_seconds, losses if mid else (), per_key if mid else None, force=True)
            if callback is not None:
                callback(state, record)
        if val is None:
            best_params = jax.device_get(state["params"])
    finally:
        bar.close()
        if ckpt is not None:
            ckpt.close()  # waits for the asynchronous saves
        if log_file is not None:
            log_file.close()
    return FitResult(state=state, best_params=best_params, best_metric=best_metric, history=history, engine=engine)


def _flat(losses: list) -> jax.Array:
    """The step losses of an epoch, kept as one array per dispatched chunk, as one ``(steps,)`` array."""
    return jnp.concatenate([jnp.reshape(x, (-1,)) for x in losses])


def _truncate_log(path: Path, step: int) -> None:
    """Keep the records of ``path`` up to ``step`` (those a resumed run would otherwise write twice) and drop
    a line cut short by a kill; atomic (a kill during the rewrite leaves the old file)."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and int(record.get("step", step + 1)) <= step:
            keep.append(line + "\n")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(keep))
    os.replace(tmp, path)
