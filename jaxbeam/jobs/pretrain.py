"""Pre-training and fine-tuning jobs: BERT (eqs. 17-18) and UBERT (eqs. 29-30, Algorithm 1, Sec. V-C2).

Each job is cached under a run directory and resumable (orbax checkpoints of :func:`jaxbeam.train.fit`);
a finished run is not trained again, and a directory holding a run of another identity stops with a
``ValueError`` (:func:`jaxbeam.jobs.runs.check_run`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import numpy as np

import jaxbeam as jb
from jaxbeam import train
from jaxbeam.configs import Config
from jaxbeam.data.format import LabelSet
from jaxbeam.jobs.adapters import save_adapters
from jaxbeam.jobs.builders import bert_model, loss_for, ubert_batch_size, ubert_model
from jaxbeam.jobs.runs import budget_record, check_run, epochs_for, fit_within_budget, params_digest, train_identity
from jaxbeam.models import lora
from jaxbeam.train.losses_multitask import make_multitask_loss
from jaxbeam.train.task_weighting import DynamicWeightAverage


def _fit_options(tc, progress: bool, *, multitask: bool = False) -> dict:
    """The training-config fields that every pre-training and fine-tuning fit passes to ``train.fit``;
    ``task_weighting="dwa"`` (multi-task runs only, else ``ValueError``) as a :class:`DynamicWeightAverage`."""
    _single_task_weighting(tc, multitask)
    return {
        "task_weighting": DynamicWeightAverage(tc.dwa_temperature) if tc.task_weighting == "dwa" else None,
        "seed": tc.seed,
        "eval_batch_size": tc.eval_batch_size,
        "checkpoint_every": tc.checkpoint_every,
        "log_every": tc.log_every,
        "steps_per_call": tc.steps_per_call,
        "progress": progress,
    }


def _single_task_weighting(tc, multitask: bool) -> None:
    if tc.task_weighting != "equal" and not multitask:
        raise ValueError(
            f"task_weighting={tc.task_weighting!r} weighs UBERT's task losses; BERT trains one task (use 'equal')"
        )


def pretrain(
    cfg: Config,
    labels: LabelSet,
    workdir: Path,
    *,
    steps: int | None = None,
    minutes: float | None = None,
    progress: bool = True,
    model=None,
    identity: dict | None = None,
):
    """Supervised (eq. 17) or unsupervised (eq. 18) pre-training of BERT on ``labels``; resumable.

    Budget: ``steps`` training steps (``ceil(steps / steps_per_epoch)`` epochs, the cosine schedule over
    them; reproducible anywhere), else with ``minutes`` a clock (epochs sized once by a throughput probe,
    recorded in ``workdir/config.json`` so a resumed run keeps its schedule, and training stopped on the
    clock: machine-dependent), else the preset's ``epochs``. A finished run is not trained again. ``model``
    replaces BERT by another module with BERT's call signature (a baseline of
    :mod:`jaxbeam.models.baselines`); ``identity`` adds fields to the run's identity (:func:`train_identity`,
    checked by :func:`check_run`: ``ValueError`` if ``workdir`` holds a run of another identity). Returns
    the best-on-validation parameters.
    """
    workdir = Path(workdir)
    tc = cfg.train
    model, loss_fn = bert_model(cfg) if model is None else model, loss_for(cfg)
    budget = budget_record(steps=steps, minutes=minutes, epochs=tc.epochs)
    ident = train_identity(cfg, {"labels": [labels.meta]}, budget, model, **(identity or {}))
    check_run(workdir, ident)
    source = train.ArraySource(
        train.label_arrays(labels.split("train"), with_labels=tc.supervised),
        tc.batch_size,
        seed=tc.seed,
        transform=train.symmetry_augment,
        on_device=tc.on_device,
    )
    epochs = epochs_for(workdir, tc.epochs, budget, model, loss_fn, source, progress)
    return fit_within_budget(
        workdir,
        minutes,
        model,
        loss_fn,
        source,
        epochs=epochs,
        learning_rate=tc.learning_rate,
        val=train.label_arrays(labels.split("val")),
        config={**cfg.to_dict(), "epochs_planned": epochs, "label_meta": labels.meta, "identity": ident},
        **_fit_options(tc, progress),
    )


def _task_label_sets(labels_by_task) -> dict[str, list[LabelSet]]:
    """``{task name: [LabelSet, ...]}`` from a mapping keyed by task name (values a LabelSet or a list)."""
    if not hasattr(labels_by_task, "items"):
        raise ValueError(f"labels_by_task must be a mapping {{task name: LabelSet}}; got {type(labels_by_task)}")
    out = {}
    for name, value in labels_by_task.items():
        if name not in jb.TASKS:
            raise ValueError(f"labels_by_task keys must be task names in {jb.TASKS}; got {name!r}")
        sets = list(value) if isinstance(value, list | tuple) else [value]
        if not sets or not all(isinstance(x, LabelSet) for x in sets):
            raise ValueError(f"labels_by_task[{name!r}] must be a LabelSet or a list of LabelSets")
        out[name] = sets
    if not out:
        raise ValueError("labels_by_task is empty")
    return out


def _multitask_setup(cfg: Config, sets: dict[str, list[LabelSet]], *, sampling: str, augment: bool, seed: int):
    """Training source, validation arrays and the loss whose ``"utility"`` is mean eq. 31 / 100 over tasks."""
    B = ubert_batch_size(cfg.train.batch_size)
    transform = train.symmetry_augment if augment else None
    on_device = cfg.train.on_device
    if len(sets) == len(jb.TASKS):
        source = train.MultiTaskSource(
            {t: [x.split("train") for x in xs] for t, xs in sets.items()},
            B,
            seed=seed,
            sampling=sampling,
            transform=transform,
            on_device=on_device,
        )
    else:  # fine-tuning on a subset of the tasks: a shuffled pool (one task: plain single-task batches)
        arrays = train.multitask_arrays({t: [x.split("train") for x in xs] for t, xs in sets.items()})
        pool = min(B, len(arrays["H"]))
        source = train.ArraySource(arrays, pool, seed=seed, transform=transform, on_device=on_device)
    val = train.multitask_arrays({t: [x.split("val") for x in xs] for t, xs in sets.items()})
    # eq. 31 normaliser per task: the validation mean of the label utility (tasks not present: 1)
    scale = [1.0] * len(jb.TASKS)
    for t, xs in sets.items():
        scale[jb.TASKS.index(t)] = float(np.mean(np.concatenate([x.split("val").U for x in xs])))
    loss_fn = make_multitask_loss(sigma2=cfg.system.sigma2, Pc=cfg.system.Pc, utility_scale=scale)
    return source, val, loss_fn, scale, B


def pretrain_ubert(
    cfg: Config,
    labels_by_task,
    workdir: Path,
    *,
    steps: int | None = None,
    minutes: float | None = None,
    sampling: str = "uniform",
    augment: bool = True,
    progress: bool = True,
    model=None,
    loss_fn=None,
    identity: dict | None = None,
):
    """Supervised multi-task pre-training of UBERT (eqs. 29-30, Algorithm 1) on one label set per task; resumable.

    Args:
      cfg: preset (model size, learning rate, epochs, seed; the batch size is rounded by
        :func:`ubert_batch_size`).
      labels_by_task: ``{"sr": LabelSet, "mr": ..., "ee": ...}`` (all three; a value may be a list of label
        sets of several (K, N), padded with masks). Their ``"train"`` parts are trained on, their ``"val"``
        parts select the best weights.
      workdir: run directory (orbax checkpoints, ``config.json``, ``metrics.jsonl``).
      steps, minutes: the budget, as :func:`pretrain` (a fixed step count; or a clock, machine-dependent;
        neither: the preset's epochs).
      sampling: ``"uniform"`` (Algorithm 1) or ``"random"`` (Fig. 6 baseline).
      augment: label-preserving symmetry augmentation (:func:`jaxbeam.train.symmetry_augment`).
      progress: progress bar and messages.
      model: a UBERT variant to train instead of the preset's (e.g. an ablation of Table VIII).
      loss_fn: a multi-task loss replacing eq. 30 (e.g. the Sum Loss of eq. 32, Table VII); it must keep the
        ``"utility"`` metric of ``make_multitask_loss`` (the validation criterion). Name it in ``identity``.
      identity: fields added to the run's identity (:func:`train_identity`, checked by :func:`check_run`).

    The validation criterion is the mean over tasks of eq. 31 / 100 (``make_multitask_loss`` with
    ``utility_scale`` = each task's mean validation label utility), so SR, MR and EE count equally despite
    their different units. Returns the best-on-validation parameters.
    """
    sets = _task_label_sets(labels_by_task)
    if sorted(sets) != sorted(jb.TASKS):
        raise ValueError(f"labels_by_task must hold label sets for every task {jb.TASKS}; got {sorted(sets)}")
    workdir = Path(workdir)
    tc = cfg.train
    model = ubert_model(cfg) if model is None else model
    source, val, eq30, scale, B = _multitask_setup(cfg, sets, sampling=sampling, augment=augment, seed=tc.seed)
    budget = budget_record(steps=steps, minutes=minutes, epochs=tc.epochs)
    metas = {t: [x.meta for x in xs] for t, xs in sets.items()}
    extra = {"sampling": sampling, "augment": augment, "loss": "eq30" if loss_fn is None else "custom"}
    ident = train_identity(cfg, metas, budget, model, **{**extra, **(identity or {})})
    check_run(workdir, ident)
    if loss_fn is not None and tc.task_weighting != "equal":
        raise ValueError(
            f"task_weighting={tc.task_weighting!r} weighs eq. 30's task losses; loss_fn replaces that loss"
        )
    loss_fn = eq30 if loss_fn is None else loss_fn
    epochs = epochs_for(workdir, tc.epochs, budget, model, loss_fn, source, progress)
    config = {
        **cfg.to_dict(),
        "model_kind": "ubert",
        "epochs_planned": epochs,
        "batch_size_used": B,
        "sampling": sampling,
        "augment": augment,
        "utility_scale": scale,
        "label_meta": metas,
        "identity": ident,
    }
    return fit_within_budget(
        workdir,
        minutes,
        model,
        loss_fn,
        source,
        epochs=epochs,
        learning_rate=tc.learning_rate,
        val=val,
        config=config,
        **_fit_options(tc, progress, multitask=True),
    )


def finetune_ubert(
    cfg: Config,
    labels_by_task,
    workdir: Path,
    init_params,
    *,
    epochs: int = 10,
    learning_rate: float = 2e-5,
    sampling: str = "uniform",
    augment: bool = False,
    progress: bool = True,
    identity: dict | None = None,
    adapter: lora.LoRAConfig | None = None,
):
    """Supervised fine-tuning of a pre-trained UBERT (Sec. V-C2): same architecture, same loss (eqs. 29-30).

    Every parameter starts from ``init_params``; none is re-initialised, whatever K and N the new label
    sets have (UBERT's parameter shapes depend on F only; checked against a fresh init, ``ValueError`` if
    the trees differ, e.g. another F or L).

    Args:
      cfg: preset of the pre-trained model (its F, L, C; the batch size as in :func:`pretrain_ubert`).
      labels_by_task: ``{task name: LabelSet or list}`` for one, two or all three tasks (all three: balanced
        batches of Algorithm 1; fewer: a shuffled pool of their samples).
      workdir: run directory of the fine-tuning.
      init_params: the pre-trained parameters (``"params"`` collection).
      epochs: epochs (paper: 10); learning_rate: initial Adam learning rate (paper: 2e-5, cosine decay).
      sampling, augment, progress: as :func:`pretrain_ubert`.
      identity: fields added to the run's identity (which holds :func:`params_digest` of ``init_params``).
      adapter: LoRA / MoE-LoRA (:mod:`jaxbeam.models.lora`, papers 003-004) on the frozen UBERT: only the
        adapters train (every base parameter frozen, no Adam state); MoE-LoRA's gate reads each sample's
        task (UBERT's task token), so the tasks share experts and keep their own mix (003 eq. 24). The
        adapters are also stored apart in ``workdir/adapters``.

    Returns:
      the best-on-validation parameters; with ``adapter`` the ``{"base", "lora"}`` tree
      (:func:`task_params` gives one task's merged UBERT parameters).
    """
    sets = _task_label_sets(labels_by_task)
    model = ubert_model(cfg)
    source, val, loss_fn, scale, B = _multitask_setup(
        cfg, sets, sampling=sampling, augment=augment, seed=cfg.train.seed
    )
    example = train.example_batch(source)  # expanded on the host when the batches are indices
    kw = {k: example[k] for k in ("mask", "antenna_mask") if k in example}
    fresh = jax.eval_shape(
        lambda: model.init(jax.random.PRNGKey(0), example["H"], example["P"], example["task"], **kw)
    )["params"]
    fresh_shapes = jax.tree.map(lambda x: tuple(x.shape), fresh)
    if jax.tree.map(lambda x: tuple(np.shape(x)), init_params) != fresh_shapes:
        raise ValueError("init_params do not fit this UBERT (another F, L, C or head?); nothing is re-initialised")
    budget = {"epochs": int(epochs), "learning_rate": float(learning_rate), "machine_dependent": False}
    metas = {t: [x.meta for x in xs] for t, xs in sets.items()}
    extra = {"finetune": True, "init_params": params_digest(init_params), "sampling": sampling, "augment": augment}
    if adapter is not None:
        extra["adapter"] = dataclasses.asdict(adapter)
    ident = train_identity(cfg, metas, budget, model, **{**extra, **(identity or {})})
    check_run(Path(workdir), ident)
    params, adapted = init_params, {}
    if adapter is not None:
        params = lora.combine(init_params, lora.init(jax.random.PRNGKey(cfg.train.seed + 1), init_params, adapter))
        adapted = {"forward": lora.forward(adapter), "trainable_labels": lora.trainable(params)}
    res = train.fit(
        model,
        loss_fn,
        source,
        epochs=epochs,
        learning_rate=learning_rate,
        val=val,
        workdir=workdir,
        config={
            **cfg.to_dict(),
            "model_kind": "ubert",
            "finetune": True,
            "batch_size_used": B,
            "utility_scale": scale,
            "label_meta": metas,
            "identity": ident,
            **({} if adapter is None else {"adapter": dataclasses.asdict(adapter)}),
        },
        init_params=params,
        **adapted,
        **_fit_options(cfg.train, progress, multitask=True),
    )
    if adapter is not None and jax.process_index() == 0:
        best = res.best_params
        save_adapters(Path(workdir) / "adapters", best["lora"], adapter, best["base"])
    return res.best_params


def task_params(params: dict, adapter: lora.LoRAConfig, task: int | None = None):
    """The plain model parameters of one task from an adapter fine-tuning's ``{"base", "lora"}`` tree
    (:func:`finetune_bert`, :func:`finetune_ubert`): the adapters merged in (eq. 22), MoE-LoRA's experts
    mixed by ``task``'s gate; the merged model computes what the adapted one does on that task's samples."""
    return jax.device_get(lora.merge(params["base"], params["lora"], adapter, task=task if adapter.experts else None))


def finetune_identity(cfg: Config, pre_params, budget: dict, model, *, frozen_encoder: bool, **extra) -> dict:
    """The identity (:func:`jaxbeam.jobs.runs.train_identity`) of a :func:`finetune_bert` run."""
    extra = {"finetuned_from": params_digest(pre_params), "frozen_encoder": frozen_encoder, **extra}
    return train_identity(cfg, {}, budget, model, **extra)


def finetune_bert(
    cfg: Config,
    pre_params,
    workdir: Path,
    source,
    val: dict,
    *,
    budget: dict,
    learning_rate: float | None = None,
    frozen_encoder: bool = False,
    adapter: lora.LoRAConfig | None = None,
    seed: int = 0,
    model=None,
    identity: dict | None = None,
    config: dict | None = None,
    progress: bool = True,
):
    """Unsupervised fine-tuning (eq. 18, Sec. IV-C2) of a pre-trained BERT to ``cfg``'s utility, K and N.

    Same N loads every parameter of ``pre_params``; another N re-initialises the embedding and output layer
    (:func:`jaxbeam.train.transfer_params`); ``frozen_encoder`` trains only those (Table IV). ``adapter``
    (LoRA or MoE-LoRA, :mod:`jaxbeam.models.lora`; papers 003-004) freezes the encoder too and trains
    low-rank adapters on it beside the embedding and output layer; MoE-LoRA's gate reads the utility's task
    id. The adapters are stored apart in ``workdir/adapters`` (:func:`jaxbeam.jobs.adapters.save_adapters`)
    and the returned best parameters have them merged in (a plain BERT tree, eq. 22).

    Args:
      cfg: the fine-tuning config (utility, K, N, P, model size, ``learning_rate``; ``supervised=False``).
      pre_params: the pre-trained parameters (``"params"`` collection).
      workdir: run directory of the fine-tuning (resumable; a finished run is loaded).
      source: training batches of channels ``{"H", "P"}`` (e.g. :class:`jaxbeam.train.ChannelSource`).
      val: validation arrays ``{"H", "P"}`` (best weights by the utility on them).
      budget: ``{"epochs": E, ...}`` recorded in the run's identity; E epochs are trained.
      learning_rate: initial Adam learning rate (cosine decay; default ``cfg.train.learning_rate``).
      seed: initialisation and shuffling seed; model: the BERT (default :func:`bert_model` of ``cfg``).
      identity: fields added to the run's identity (which holds :func:`params_digest` of ``pre_params``);
      config: fields added to ``config.json``.

    Returns:
      ``(model, FitResult)``.
    """
    _single_task_weighting(cfg.train, multitask=False)
    model = bert_model(cfg) if model is None else model
    extra = dict(identity or {})
    if adapter is not None:
        extra["adapter"] = dataclasses.asdict(adapter)
    ident = finetune_identity(cfg, pre_params, budget, model, frozen_encoder=frozen_encoder, **extra)
    check_run(Path(workdir), ident)
    example = train.example_batch(source)
    fresh = model.init(jax.random.PRNGKey(seed), *(example[k] for k in ("H", "P")))["params"]
    params = train.transfer_params(jax.device_get(pre_params), fresh)
    labels = train.trainable_labels(params) if frozen_encoder or adapter is not None else None
    forward = train.default_forward
    task = jb.TASKS.index(cfg.train.utility)
    if adapter is not None:
        ad = lora.init(jax.random.PRNGKey(seed + 1), params, adapter)
        params = lora.combine(params, ad)
        forward = lora.forward(adapter, task=task if adapter.experts else None, base_labels=labels)
        labels = lora.trainable(params, labels)
    run_config = {**cfg.to_dict(), **(config or {}), "frozen_encoder": frozen_encoder, "identity": ident}
    if adapter is not None:
        run_config["adapter"] = {**dataclasses.asdict(adapter), "task": task}
    res = train.fit(
        model,
        loss_for(cfg),
        source,
        epochs=budget["epochs"],
        learning_rate=cfg.train.learning_rate if learning_rate is None else learning_rate,
        val=val,
        workdir=Path(workdir),
        config=run_config,
        init_params=params,
        trainable_labels=labels,
        seed=seed,
        steps_per_call=cfg.train.steps_per_call,
        progress=progress,
        forward=forward,
    )
    if adapter is not None:
        best = res.best_params
        if jax.process_index() == 0:
            save_adapters(Path(workdir) / "adapters", best["lora"], adapter, best["base"])
        res.best_params = merged_params(best, run_config["adapter"])
    return model, res


def merged_params(params: dict, adapter: dict):
    """A ``{"base", "lora"}`` tree of an adapter fine-tuning as plain model parameters (eq. 22; MoE-LoRA
    with the run's task), from the ``"adapter"`` record of its ``config.json``."""
    record = dict(adapter)
    task = record.pop("task", None)
    return task_params(params, lora.LoRAConfig(**{**record, "targets": tuple(record["targets"])}), task)
