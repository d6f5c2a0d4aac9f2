"""The experiments' cache of label sets and trained models (see :mod:`experiments.common` for the keys)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import jaxbeam as jb
from experiments.settings import BUDGETS, POWERS, Budget
from jaxbeam import configs, train
from jaxbeam.data.format import LabelSet, fingerprint, split_ids
from jaxbeam.data.generate import draw_source, generate_labels, label_config, source_params
from jaxbeam.jobs.builders import build_model
from jaxbeam.jobs.evaluate import REFERENCES, performance_rows
from jaxbeam.jobs.pretrain import finetune_bert, finetune_identity, finetune_ubert, pretrain, pretrain_ubert
from jaxbeam.jobs.runs import describe_budget, model_identity, params_digest
from jaxbeam.models import lora
from jaxbeam.train.losses_multitask import make_sum_loss


class Context:
    """Cached label sets and trained models of one preset (see the module docstring)."""

    def __init__(
        self,
        preset: str,
        runs: Path,
        *,
        seed: int = 0,
        progress: bool = True,
        budget: Budget | None = None,
        channel: str = "rayleigh",
        channel_args: dict | None = None,
        power: str = "total",
    ):
        if preset not in BUDGETS:
            raise ValueError(f"preset must be one of {tuple(BUDGETS)}; got {preset!r}")
        if power not in ("total", "antenna"):
            raise ValueError(f"power must be 'total' or 'antenna'; got {power!r}")
        self.preset, self.budget, self.runs = preset, budget or BUDGETS[preset], Path(runs)
        self.seed, self.progress = seed, progress
        self.sigma2, self.Pc = 0.1, 0.5
        # the scenario (#19): every label set, model and fine-tuning of this context uses this channel source and
        # power constraint (labels by the per-antenna solvers, models with power="antenna"); the defaults leave
        # every identity as it was, so the Rayleigh / total-power cache is shared
        self.channel, self.channel_args, self.power = channel, dict(channel_args or {}), power
        source_params(channel, self.channel_args)  # ValueError for an unknown source or parameter

    def variant(self, **scenario) -> Context:
        """This context (preset, cache, seed, budget) for another scenario: ``channel``, ``channel_args``, ``power``."""
        kw = {"channel": self.channel, "channel_args": self.channel_args, "power": self.power, **scenario}
        return Context(self.preset, self.runs, seed=self.seed, progress=self.progress, budget=self.budget, **kw)

    # ----------------------------------------------------------------------------------------- data
    def grid(self, values: Sequence) -> list:
        """The values an experiment sweeps: all of them, except on ``smoke`` (the first one only)."""
        return list(values)[:1] if self.preset == "smoke" else list(values)

    def config(self, utility: str = "sr", K: int = 6, N: int = 12, P: Sequence[float] = POWERS, **over):
        b = self.budget
        return configs.get_preset(
            b.model_preset,
            utility=utility,
            K=K,
            N=N,
            P=tuple(P),
            samples_per_power=b.samples_per_power,
            epochs=b.epochs,
            seed=self.seed,
            **({"power": "antenna"} if self.power == "antenna" else {}),
            **over,
        )

    def label_args(self, utility: str, K: int, N: int, P: Sequence[float] = POWERS, *, test: bool = False) -> dict:
        """The :func:`jaxbeam.data.generate.generate_labels` arguments of :meth:`labels` (its identity's source)."""
        n = self.budget.test_samples_per_power if test else self.budget.samples_per_power
        seed = self.seed + (7919 if test else 0) + 101 * K + N
        P = [float(p) for p in P]
        args = {"utility": utility, "K": K, "N": N, "P_levels": P, "samples": n, "seed": seed}
        if self.preset == "smoke":  # a chunk draws and solves chunk_size channels (1,024 by default) to keep n of
            args["chunk_size"] = n  # them; the per-antenna solvers take minutes for that on path-loss channels
        if self.channel != "rayleigh" or self.channel_args:
            args.update(channel=self.channel, channel_args=self.channel_args)
        if self.power == "antenna":  # P / N per antenna: WMMSE's per-antenna version for SR, SCA otherwise
            args["solver"] = "wmmse-antenna" if utility == "sr" else "sca-antenna"
            if test:  # every % divides by these: solved to convergence (generate.SOLVERS), one chunk per P
                args["solver"] += "-strict"
                args["chunk_size"] = n
        return args

    def label_identity(self, *args, **kw) -> dict:
        """:func:`jaxbeam.data.generate.label_config` of :meth:`labels` with these arguments."""
        return label_config(**self.label_args(*args, **kw), sigma2=self.sigma2, Pc=self.Pc)

    def labels(self, utility: str, K: int, N: int, P: Sequence[float] = POWERS, *, test: bool = False) -> LabelSet:
        """Label set of ``utility`` at (K, N) and power levels P: a pre-training set (split 8:1:1) or, with
        ``test``, a smaller test-only set drawn from other channels. Made once (at a path keyed by its
        identity), then loaded and checked."""
        a = self.label_args(utility, K, N, P, test=test)
        tag = "-".join(f"{p:g}" for p in a["P_levels"])
        ident = self.label_identity(utility, K, N, P, test=test)
        path = self.runs / "labels" / f"{utility}_{K}x{N}_P{tag}_n{a['samples']}_s{a['seed']}-{fingerprint(ident)}"
        if self.progress and not (path / "meta.json").is_file():
            print(f"labels: {utility.upper()} at ({K}, {N}), P = {a['P_levels']}, {a['samples']} per P -> {path}")
        return generate_labels(path, **a, sigma2=self.sigma2, Pc=self.Pc, progress=self.progress)

    # ---------------------------------------------------------------------------------------- models
    def model(self, kind: str, K: int, N: int, cfg=None):
        """A fresh single-task module of ``kind`` (:data:`jaxbeam.jobs.builders.MODELS`) sized by the preset."""
        return build_model(kind, cfg or self.config(), K, N)

    def pretrained(
        self,
        kind: str,
        utility: str,
        K: int,
        N: int,
        P: Sequence[float] = POWERS,
        *,
        loss: str = "supervised",
        budget_factor: int = 1,
    ):
        """``(module, best params)`` of ``kind`` pre-trained on ``utility`` at (K, N), P (eq. 17, or eq. 18
        with ``loss="objective"``) for ``budget_factor`` times the budget's steps or minutes; trained once,
        then loaded (an unfinished run resumes)."""
        cfg, model, workdir = self._pretrained_run(kind, utility, K, N, P, loss, budget_factor)
        budget = self.budget.train_budget(budget_factor)
        if self.progress:
            print(
                f"pre-training {kind.upper()} for {utility.upper()} at ({K}, {N}), P = {list(P)}, "
                f"{describe_budget(budget)} -> {workdir}"
            )
        labels = self.labels(utility, K, N, P)
        params = pretrain(
            cfg,
            labels,
            workdir,
            steps=budget.get("steps"),
            minutes=budget.get("minutes"),
            progress=self.progress,
            model=model,
            identity={"kind": kind, "loss": loss},
        )
        return model, params

    def pretrained_dir(
        self,
        kind: str,
        utility: str,
        K: int,
        N: int,
        P: Sequence[float] = POWERS,
        *,
        loss: str = "supervised",
        budget_factor: int = 1,
    ) -> Path:
        """The run folder of :meth:`pretrained` with these arguments (it need not exist yet)."""
        return self._pretrained_run(kind, utility, K, N, P, loss, budget_factor)[2]

    def _pretrained_run(self, kind, utility, K, N, P, loss, budget_factor=1):
        if loss not in ("supervised", "objective"):
            raise ValueError(f"loss must be 'supervised' or 'objective'; got {loss!r}")
        cfg = self.config(utility, K, N, P, supervised=loss == "supervised")
        tag = "-".join(f"{p:g}" for p in P)
        model = self.model(kind, K, N, cfg)
        budget = self.budget.train_budget(budget_factor)
        request = {"labels": [self.label_identity(utility, K, N, P)], "budget": budget, "kind": kind, "loss": loss}
        key = fingerprint({"config": cfg.to_dict(), "model": model_identity(model), **request})
        return cfg, model, self.runs / "models" / f"{kind}_{utility}_{K}x{N}_P{tag}_{loss}-{key}"

    def pretrained_ubert(
        self,
        K: int,
        N: int,
        P: Sequence[float] = POWERS,
        *,
        sampling: str = "uniform",
        loss: str = "proposed",
        variant: str = "full",
        head: str | None = None,
        weighting: str = "equal",
    ):
        """``(UBERT, best params)`` pre-trained on SR, MR and EE labels at (K, N), P (eqs. 29-30, Algorithm 1).

        ``sampling`` ``"uniform"`` / ``"random"`` (Fig. 6); ``loss`` ``"proposed"`` (eq. 30) / ``"sum"``
        (eq. 32, Table VII); ``variant`` ``"full"`` / ``"no_pos"`` (UBERT*) / ``"no_task"`` (UBERT-dagger);
        ``head`` one of ``jb.models.ubert.HEADS`` (default: the preset's, ``balanced``); ``weighting``
        ``"equal"`` (eq. 29) / ``"dwa"`` (DWA of the task losses, paper 003; eq. 30 only).
        """
        if variant not in ("full", "no_pos", "no_task"):
            raise ValueError(f"variant must be 'full', 'no_pos' or 'no_task'; got {variant!r}")
        if loss not in ("proposed", "sum"):
            raise ValueError(f"loss must be 'proposed' or 'sum'; got {loss!r}")
        cfg = self.config("sr", K, N, P, task_weighting=weighting)
        model = self.ubert(cfg, variant, head)
        workdir = self.ubert_dir(K, N, P, sampling=sampling, loss=loss, variant=variant, head=head, weighting=weighting)
        sets = {t: self.labels(t, K, N, P) for t in jb.TASKS}
        if self.progress:
            print(
                f"pre-training UBERT ({variant}, {model.head} head, {sampling} sampling, {loss} loss, {weighting} "
                f"task weights) at ({K}, {N})"
            )
        budget = self.budget.train_budget(len(jb.TASKS))
        params = pretrain_ubert(
            cfg,
            sets,
            workdir,
            steps=budget.get("steps"),
            minutes=budget.get("minutes"),
            sampling=sampling,
            progress=self.progress,
            model=model,
            loss_fn=_sum_loss(self.sigma2, self.Pc, sets) if loss == "sum" else None,
            identity={"loss": loss, "variant": variant},
        )
        return model, params

    def ubert_dir(
        self, K, N, P=POWERS, *, sampling="uniform", loss="proposed", variant="full", head=None, weighting="equal"
    ) -> Path:
        """Run directory of :meth:`pretrained_ubert` (checkpoints, ``metrics.jsonl``), keyed by its identity."""
        tag = "-".join(f"{p:g}" for p in P)
        cfg = self.config("sr", K, N, P, task_weighting=weighting)
        model = self.ubert(cfg, variant, head)
        request = {
            "config": cfg.to_dict(),
            "model": model_identity(model),
            "labels": {t: self.label_identity(t, K, N, P) for t in jb.TASKS},
            "budget": self.budget.train_budget(len(jb.TASKS)),
            "sampling": sampling,
            "loss": loss,
        }
        weights = "" if weighting == "equal" else f"_{weighting}"
        name = f"ubert-{variant}-{model.head}_{K}x{N}_P{tag}_{sampling}_{loss}{weights}-{fingerprint(request)}"
        return self.runs / "models" / name

    def ubert(self, cfg=None, variant: str = "full", head: str | None = None):
        """A fresh UBERT sized by the preset: ``variant`` as in :meth:`pretrained_ubert`, ``head`` (default the
        preset's) one of ``jb.models.ubert.HEADS``."""
        cfg = cfg or self.config()
        m = cfg.model
        heads = jb.models.ubert.HEADS
        if head is not None and head not in heads:
            raise ValueError(f"head must be one of {heads}; got {head!r}")
        return jb.models.UBERT(
            features=m.features,
            num_layers=m.num_layers,
            num_heads=m.num_heads,
            positional_encoding=variant != "no_pos",
            task_embedding=variant != "no_task",
            head=head or m.ubert_head,
            sigma2=cfg.system.sigma2,
            domain=m.domain,
            power=m.power,  # a per-antenna scenario's UBERT ends in the per-antenna set (it was left out: #19)
        )

    def finetune_bert(
        self,
        pre: tuple,
        pre_name: str,
        utility: str,
        K: int,
        N: int,
        *,
        frozen_encoder: bool = False,
        adapter: lora.LoRAConfig | None = None,
        samples: int | None = None,
        P: Sequence[float] = POWERS,
        result: bool = False,
    ):
        """Unsupervised fine-tuning (eq. 18, Sec. IV-C2) of a pre-trained BERT ``pre = (module, params)`` to
        ``utility`` at (K, N): same N loads everything, another N re-initialises embedding and output layer;
        ``frozen_encoder`` trains only those (Table IV); ``adapter`` freezes the encoder and adds LoRA /
        MoE-LoRA adapters to it (:func:`jaxbeam.jobs.pretrain.finetune_bert`). ``samples`` channels (default:
        the budget's fine-tuning set size), ``finetune_epochs`` epochs. Returns ``(module, params)`` (adapters
        merged in), with ``result`` also the :class:`jaxbeam.train.FitResult`."""
        b = self.budget
        samples = b.finetune_samples if samples is None else samples
        cfg = self.config(utility, K, N, P, supervised=False)
        model = self.model("bert", K, N, cfg)
        tag = "frozen" if frozen_encoder else "full"
        if adapter is not None:
            tag = f"lora{adapter.rank}" + (f"x{adapter.experts}" if adapter.experts else "")
        budget = {"epochs": b.finetune_epochs, "learning_rate": b.finetune_lr, "machine_dependent": False}
        extra = {"samples": samples}
        if self.channel != "rayleigh" or self.channel_args:  # the channels it fine-tunes on (Rayleigh: as before)
            extra["channel"] = {"name": self.channel, **source_params(self.channel, self.channel_args)}
            tag += f"_{self.channel}"
        named = {**extra, **({} if adapter is None else {"adapter": dataclasses.asdict(adapter)})}
        ident = finetune_identity(cfg, pre[1], budget, model, frozen_encoder=frozen_encoder, **named)
        name = f"bert_{pre_name}_to_{utility}_{K}x{N}_{tag}_n{samples}{self._ft_tag()}-{fingerprint(ident)}"
        arrays, val = self.finetune_channels(K, N, samples, P)
        source = train.ArraySource(
            arrays, min(cfg.train.batch_size, samples), seed=self.seed, on_device=cfg.train.on_device
        )
        if self.progress:
            print(f"fine-tuning BERT ({pre_name}) to {utility.upper()} at ({K}, {N}), {tag}, {samples} samples")
        _, res = finetune_bert(
            cfg,
            pre[1],
            self.runs / "finetune" / name,
            source,
            val,
            budget=budget,
            learning_rate=b.finetune_lr,
            frozen_encoder=frozen_encoder,
            adapter=adapter,
            seed=self.seed,
            model=model,
            identity=extra,
            config={"finetuned_from": pre_name},
            progress=self.progress,
        )
        return (model, res.best_params, res) if result else (model, res.best_params)

    def finetune_channels(self, K: int, N: int, samples: int, P: Sequence[float] = POWERS) -> tuple[dict, dict]:
        """The unlabelled fine-tuning set of :meth:`finetune_bert` at (K, N) (``samples`` channels of the scenario, P
        cycled) and its 256-channel validation set, as ``({"H", "P"}, {"H", "P"})``; fixed by the seed and (K, N)."""
        Ps = np.asarray(P, np.float32)
        draw = functools.partial(draw_source, self.channel, K=K, N=N, dtype=jnp.complex64,
                                 params=source_params(self.channel, self.channel_args))  # fmt: skip
        H = np.asarray(draw(jax.random.key(self.seed + 31 * K + N), samples))
        val_H = np.asarray(draw(jax.random.key(self.seed + 17 + 31 * K + N), 256))
        return {"H": H, "P": np.resize(Ps, samples)}, {"H": val_H, "P": np.resize(Ps, 256)}

    def finetune_ubert(
        self,
        pre: tuple,
        pre_name: str,
        K: int,
        N: int,
        *,
        samples: int | None = None,
        P=POWERS,
        adapter: lora.LoRAConfig | None = None,
        with_workdir: bool = False,
    ):
        """Supervised fine-tuning of a pre-trained UBERT on all three tasks at (K, N) (Sec. V-C2): nothing is
        re-initialised. ``samples`` labelled samples per task (default: the budget's fine-tuning size).
        ``adapter``: LoRA / MoE-LoRA on the frozen UBERT, gated by each sample's task
        (:func:`jaxbeam.jobs.pretrain.finetune_ubert`); the parameters are then ``{"base", "lora"}``
        (:func:`jaxbeam.jobs.pretrain.task_params` merges one task's). Returns ``(module, params)``, with
        ``with_workdir`` also the run directory."""
        b = self.budget
        samples = b.finetune_samples if samples is None else samples
        cfg = self.config("sr", K, N, P)
        sets = {}
        for t in jb.TASKS:
            full = self.labels(t, K, N, P, test=False).split("train")
            sets[t] = full.subset(np.arange(min(samples, len(full))))
        request = {
            "config": cfg.to_dict(),
            "labels": {t: self.label_identity(t, K, N, P) for t in jb.TASKS},
            "init_params": params_digest(pre[1]),
            "budget": {"epochs": b.finetune_epochs, "learning_rate": b.finetune_lr},
        }
        tag = ""
        if adapter is not None:  # added to the request only here: the full fine-tunings keep their folders
            request["adapter"] = dataclasses.asdict(adapter)
            tag = f"_lora{adapter.rank}" + (f"x{adapter.experts}" if adapter.experts else "")
        name = f"ubert_{pre_name}_to_{K}x{N}{tag}_n{samples}{self._ft_tag()}-{fingerprint(request)}"
        workdir = self.runs / "finetune" / name
        if self.progress:
            print(f"fine-tuning UBERT ({pre_name}) at ({K}, {N}), {samples} samples per task -> {workdir}")
        params = finetune_ubert(
            cfg,
            {t: _resplit(x) for t, x in sets.items()},
            workdir,
            jax.device_get(pre[1]),
            epochs=b.finetune_epochs,
            learning_rate=b.finetune_lr,
            progress=self.progress,
            identity={"samples_per_task": samples},
            adapter=adapter,
        )
        return (pre[0], params, workdir) if with_workdir else (pre[0], params)

    def _ft_tag(self) -> str:
        """Suffix of a fine-tuning run directory: empty with the preset's fine-tuning epochs and learning rate,
        else both (``--finetune-epochs`` / ``--finetune-lr``), so runs with other budgets are cached apart."""
        b, base = self.budget, BUDGETS[self.preset]
        if (b.finetune_epochs, b.finetune_lr) == (base.finetune_epochs, base.finetune_lr):
            return ""
        return f"_e{b.finetune_epochs}_lr{b.finetune_lr:g}"

    # ------------------------------------------------------------------------------------ evaluation
    def evaluate(
        self,
        utility: str,
        labels: LabelSet,
        model=None,
        params=None,
        *,
        ubert: bool = False,
        name: str = "model",
        references: Sequence[str] = REFERENCES,
        csi_error_db: float | None = None,
    ) -> list[dict]:
        """Eq. 31 performance [%] per power level of ``model`` (column ``name``) and the references."""
        return performance_rows(
            utility,
            labels,
            self.sigma2,
            self.Pc,
            model=model,
            params=params,
            references=references,
            csi_error_db=csi_error_db,
            seed=self.seed,
            task=jb.TASKS.index(utility) if ubert else None,
            model_name=name,
            power=self.power,
        )

    def overall(self, utility: str, labels: LabelSet, model=None, params=None, **kw) -> dict:
        """Eq. 31 over all samples of ``labels`` (every power level pooled): ``{column: %}``.

        Pooled from :meth:`evaluate`'s per-P rows: ``mean(U) = sum_p n_p perf_p U_label,p / 100 / n``.
        """
        rows = self.evaluate(utility, labels, model, params, **kw)
        return pool(rows)


def pool(rows: Sequence[dict]) -> dict:
    """Eq. 31 of the union of the rows' samples from per-P rows (``samples``, ``label``, method columns)."""
    weight = sum(r["samples"] * r["label"] for r in rows)
    methods = [k for k in rows[0] if k not in ("utility", "K", "N", "P", "samples", "label")]
    return {m: sum(r["samples"] * r["label"] * r[m] for r in rows) / weight for m in methods if m in rows[-1]}


def _resplit(labels: LabelSet) -> LabelSet:
    """A fresh 8:1:1 split of a subset (its ``split`` array re-drawn so every part is non-empty)."""
    return dataclasses.replace(labels, split_ids=split_ids(len(labels), 0))


def _sum_loss(sigma2: float, Pc: float, sets: dict):
    """Eq. 32's Sum Loss (:func:`jaxbeam.train.losses_multitask.make_sum_loss`) scaled by the validation labels."""
    return make_sum_loss(sigma2=sigma2, Pc=Pc, utility_scale=[float(np.mean(sets[t].split("val").U)) for t in jb.TASKS])
