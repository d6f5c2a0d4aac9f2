"""Shared machinery of the paper experiments (training shell): budgets, cached labels and trained models,
evaluation beside the closed-form baselines, and the results files.

Every experiment module is ``python -m experiments.NAME --preset smoke|cpu|paper`` and calls
:func:`run_experiment` with a function ``body(ctx) -> Report``. The :class:`Context` hands out label sets
and trained models by what they are (utility, (K, N), power levels, model kind, loss), caching each under
``--runs`` (default ``runs/experiments/<preset>``), so an experiment that needs BERT-SR at (6, 12) reuses the
one another experiment trained, and an interrupted experiment resumes: label generation continues from
its last chunk and training from its last orbax checkpoint (:func:`jaxbeam.train.fit`).

Cache keys (policy: regenerate into another path, verify on load): every cached folder is
``<readable name>-<hash>``, the hash (:func:`jaxbeam.data.fingerprint`) of everything that determines it:
for label sets their identity (:func:`jaxbeam.labels.label_config`: solver, tolerance, K, N, P, samples,
seed, sigma2, Pc, channel source, dtype, label-solver version); for models the config (size, loss,
learning rate, seed...), the module, the budget and the label sets' identities; for fine-tunings also the
digest of the pre-trained parameters and the fine-tuning budget. A changed setting therefore trains or
solves into a new folder; a folder whose stored ``meta.json`` / ``config.json`` identity does not match
(e.g. copied by hand) stops with a ``ValueError`` naming the differing fields.

Budgets: a fixed number of training steps per model (:class:`Budget` ``steps``: 5,000 on ``cpu``, ~1.5 min
for BERT on a 2-core CPU at ~55 steps/s; UBERT three times that), the same on every machine; ``--minutes``
trains on a clock instead, and the results files then say that they depend on the machine.

Conventions shared by all experiments (where the paper is silent, DESIGN.md and this list decide):

* pre-training sets hold ``samples_per_power`` labels per P in {1, 2, 3} W (paper: 80,000), split 8:1:1;
  models are trained on all three power levels at once (per-sample P through the GPA) unless an
  experiment says otherwise (Table II trains at P = 1 only);
* BERT and the baselines are pre-trained with the supervised loss eq. 17, UBERT with eqs. 29-30 and
  Algorithm 1; BERT is fine-tuned without labels (eq. 18), UBERT with labels (Sec. V-C2);
* performance is eq. 31 against the label solver (WMMSE for SR, the exact max-min optimum for MR, SCA for
  EE) on the test split,
  and every table carries the references :data:`REFS` (RZF, RZF_BAL, WMMSE; Fig. 3 adds MRT and ZF) on
  the same samples: a learned model is worth something only where it beats them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

import jaxbeam as jb
from jaxbeam import configs, train
from jaxbeam.data import LabelSet, fingerprint
from jaxbeam.evaluate import markdown_table
from jaxbeam.labels import generate_labels, label_config
from jaxbeam.losses_multitask import make_multitask_loss
from jaxbeam.pipeline import (
    REFERENCES,
    budget_record,
    check_run,
    describe_budget,
    finetune_ubert,
    loss_for,
    params_digest,
    performance_rows,
    pretrain,
    pretrain_ubert,
    train_identity,
)

REFS = ("rzf", "rzf_bal", "wmmse")
"""The references beside every model column: RZF (``jb.rzf``), RZF directions with max-min powers
(RZF_BAL, ``jb.maxmin_power``: the closed-form bar on MR) and WMMSE."""
REF_HEADER = [f"{k.upper()} %" for k in REFS]

POWERS = (1.0, 2.0, 3.0)
KINDS = ("mlp", "cnn", "gcn", "gat", "gpt", "bert")  # single-task models of Fig. 3 (UBERT apart)


@dataclasses.dataclass(frozen=True)
class Budget:
    """How much data and training an experiment preset spends.

    Attributes:
      model_preset: the :mod:`jaxbeam.configs` preset for model size and learning rate.
      samples_per_power: labelled pre-training samples per power level (split 8:1:1).
      test_samples_per_power: labelled samples per power level of a test-only set (K*, fine-tune systems).
      minutes: a clock budget per model [min] (epochs sized by a throughput probe, machine-dependent
        results); None = ``steps``. Only set when asked (``--minutes``).
      epochs: epochs per model when ``steps`` and ``minutes`` are None.
      finetune_samples: samples of a fine-tuning set (paper: 10,000 unlabeled).
      finetune_epochs: fine-tuning epochs (paper: 10).
      finetune_lr: fine-tuning learning rate (paper: 2e-5).
      steps: training steps per single-task model (UBERT: three times as many); None = ``epochs``.
    """

    model_preset: str
    samples_per_power: int
    test_samples_per_power: int
    minutes: float | None
    epochs: int
    finetune_samples: int
    finetune_epochs: int
    finetune_lr: float
    steps: int | None = None

    def train_budget(self, factor: int = 1) -> dict:
        """The budget of one model (:func:`jaxbeam.pipeline.budget_record`), ``factor`` models' worth (UBERT: 3)."""
        if self.minutes is not None:
            return budget_record(minutes=self.minutes * factor)
        if self.steps is not None:
            return budget_record(steps=self.steps * factor)
        return budget_record(epochs=self.epochs)


BUDGETS = {
    "smoke": Budget("smoke", 40, 16, None, 1, 48, 1, 1e-3),
    # cpu: 5,000 steps per model, ~1.5 min for BERT at ~55 steps/s on a 2-core CPU (the former clock budget).
    # cpu fine-tuning: 40 epochs at the cpu pre-training rate. BERT re-initialises its embedding and output layer
    # at a new N; 10 epochs at 2e-4 (~8 s) left it far from converged: (6, 12) -> (8, 15) SR 42.0 % against
    # 71.8 % with 40 epochs at 1e-3 (EE 63.1 / 82.6 %); UBERT is unchanged by it (MR 96.9 / 97.2 %).
    "cpu": Budget("cpu", 3000, 300, None, 40, 2000, 40, 1e-3, steps=5000),
    "paper": Budget("paper", 80_000, 10_000, None, 100, 10_000, 10, 2e-5),
}


@dataclasses.dataclass
class Report:
    """What an experiment produces: a markdown table, raw rows, settings, and an optional figure.

    ``plot(path)`` (if given) writes the figure as a PNG at ``path``.
    """

    title: str
    header: Sequence[str]
    rows: Sequence[Sequence]
    raw: Any
    notes: str = ""
    plot: Callable[[Path], None] | None = None


class Context:
    """Cached label sets and trained models of one preset (see the module docstring)."""

    def __init__(self, preset: str, runs: Path, *, seed: int = 0, progress: bool = True, budget: Budget | None = None):
        if preset not in BUDGETS:
            raise ValueError(f"preset must be one of {tuple(BUDGETS)}; got {preset!r}")
        self.preset, self.budget, self.runs = preset, budget or BUDGETS[preset], Path(runs)
        self.seed, self.progress = seed, progress
        self.sigma2, self.Pc = 0.1, 0.5

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
            **over,
        )

    def label_args(self, utility: str, K: int, N: int, P: Sequence[float] = POWERS, *, test: bool = False) -> dict:
        """The :func:`jaxbeam.labels.generate_labels` arguments of :meth:`labels` (its identity's source)."""
        n = self.budget.test_samples_per_power if test else self.budget.samples_per_power
        seed = self.seed + (7919 if test else 0) + 101 * K + N
        P = [float(p) for p in P]
        return {"utility": utility, "K": K, "N": N, "P_levels": P, "samples": n, "seed": seed}

    def label_identity(self, *args, **kw) -> dict:
        """:func:`jaxbeam.labels.label_config` of :meth:`labels` with these arguments."""
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
        """A fresh module of ``kind`` (``"bert"``, a baseline or ``"ubert"``) sized by the preset."""
        m = (cfg or self.config()).model
        if kind == "bert":
            return jb.models.BERT(num_antennas=N, features=m.features, num_layers=m.num_layers, num_heads=m.num_heads)
        if kind == "gpt":
            return jb.models.GPT(num_antennas=N, features=m.features, num_layers=m.num_layers, num_heads=m.num_heads)
        if kind == "gat":
            return jb.models.GAT(num_antennas=N, features=m.features, num_layers=m.num_layers, num_heads=m.num_heads)
        if kind == "gcn":
            return jb.models.GCN(num_antennas=N, features=m.features, num_layers=m.num_layers)
        if kind == "mlp":
            return jb.models.MLP(num_users=K, num_antennas=N, features=m.features, num_layers=m.num_layers)
        if kind == "cnn":
            return jb.models.CNN(num_users=K, num_antennas=N, features=m.features, num_layers=m.num_layers)
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")

    def pretrained(
        self, kind: str, utility: str, K: int, N: int, P: Sequence[float] = POWERS, *, loss: str = "supervised"
    ):
        """``(module, best params)`` of ``kind`` pre-trained on ``utility`` at (K, N), P (eq. 17, or eq. 18
        with ``loss="objective"``); trained once, then loaded (an unfinished run resumes)."""
        if loss not in ("supervised", "objective"):
            raise ValueError(f"loss must be 'supervised' or 'objective'; got {loss!r}")
        cfg = self.config(utility, K, N, P, supervised=loss == "supervised")
        tag = "-".join(f"{p:g}" for p in P)
        model = self.model(kind, K, N, cfg)
        budget = self.budget.train_budget()
        request = {"labels": [self.label_identity(utility, K, N, P)], "budget": budget, "kind": kind, "loss": loss}
        key = fingerprint({"config": cfg.to_dict(), "model": repr(model), **request})
        workdir = self.runs / "models" / f"{kind}_{utility}_{K}x{N}_P{tag}_{loss}-{key}"
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
    ):
        """``(UBERT, best params)`` pre-trained on SR, MR and EE labels at (K, N), P (eqs. 29-30, Algorithm 1).

        ``sampling`` ``"uniform"`` / ``"random"`` (Fig. 6); ``loss`` ``"proposed"`` (eq. 30) / ``"sum"``
        (eq. 32, Table VII); ``variant`` ``"full"`` / ``"no_pos"`` (UBERT*) / ``"no_task"`` (UBERT-dagger);
        ``head`` one of ``jb.models.ubert.HEADS`` (default: the preset's, ``balanced``).
        """
        if variant not in ("full", "no_pos", "no_task"):
            raise ValueError(f"variant must be 'full', 'no_pos' or 'no_task'; got {variant!r}")
        if loss not in ("proposed", "sum"):
            raise ValueError(f"loss must be 'proposed' or 'sum'; got {loss!r}")
        cfg = self.config("sr", K, N, P)
        model = self.ubert(cfg, variant, head)
        workdir = self.ubert_dir(K, N, P, sampling=sampling, loss=loss, variant=variant, head=head)
        sets = {t: self.labels(t, K, N, P) for t in jb.TASKS}
        if self.progress:
            print(f"pre-training UBERT ({variant}, {model.head} head, {sampling} sampling, {loss} loss) at ({K}, {N})")
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
            loss_fn=sum_loss(self.sigma2, self.Pc, sets) if loss == "sum" else None,
            identity={"loss": loss, "variant": variant},
        )
        return model, params

    def ubert_dir(self, K, N, P=POWERS, *, sampling="uniform", loss="proposed", variant="full", head=None) -> Path:
        """Run directory of :meth:`pretrained_ubert` (checkpoints, ``metrics.jsonl``), keyed by its identity."""
        tag = "-".join(f"{p:g}" for p in P)
        cfg = self.config("sr", K, N, P)
        model = self.ubert(cfg, variant, head)
        request = {
            "config": cfg.to_dict(),
            "model": repr(model),
            "labels": {t: self.label_identity(t, K, N, P) for t in jb.TASKS},
            "budget": self.budget.train_budget(len(jb.TASKS)),
            "sampling": sampling,
            "loss": loss,
        }
        name = f"ubert-{variant}-{model.head}_{K}x{N}_P{tag}_{sampling}_{loss}-{fingerprint(request)}"
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
        samples: int | None = None,
        P: Sequence[float] = POWERS,
    ):
        """Unsupervised fine-tuning (eq. 18, Sec. IV-C2) of a pre-trained BERT ``pre = (module, params)`` to
        ``utility`` at (K, N): same N loads everything, another N re-initialises embedding and output layer;
        ``frozen_encoder`` trains only those (Table IV). ``samples`` channels (default: the budget's
        fine-tuning set size), ``finetune_epochs`` epochs."""
        b = self.budget
        samples = b.finetune_samples if samples is None else samples
        cfg = self.config(utility, K, N, P, supervised=False)
        model = self.model("bert", K, N, cfg)
        tag = "frozen" if frozen_encoder else "full"
        budget = {"epochs": b.finetune_epochs, "learning_rate": b.finetune_lr, "machine_dependent": False}
        extra = {"finetuned_from": params_digest(pre[1]), "frozen_encoder": frozen_encoder, "samples": samples}
        ident = train_identity(cfg, {}, budget, model, **extra)
        name = f"bert_{pre_name}_to_{utility}_{K}x{N}_{tag}_n{samples}{self._ft_tag()}-{fingerprint(ident)}"
        workdir = self.runs / "finetune" / name
        check_run(workdir, ident)
        H = np.asarray(jb.rayleigh(jax.random.key(self.seed + 31 * K + N), (samples,), K, N))
        Ps = np.resize(np.asarray(P, np.float32), samples)
        batch = min(cfg.train.batch_size, samples)
        source = train.ArraySource({"H": H, "P": Ps}, batch, seed=self.seed)
        fresh = model.init(jax.random.PRNGKey(self.seed), H[:1], Ps[:1])["params"]
        params = train.transfer_params(jax.device_get(pre[1]), fresh)
        val_H = jb.rayleigh(jax.random.key(self.seed + 17 + 31 * K + N), (256,), K, N)
        val = {"H": np.asarray(val_H), "P": np.resize(np.asarray(P, np.float32), 256)}
        if self.progress:
            print(f"fine-tuning BERT ({pre_name}) to {utility.upper()} at ({K}, {N}), {tag}, {samples} samples")
        res = train.fit(
            model,
            loss_for(cfg),
            source,
            epochs=b.finetune_epochs,
            learning_rate=b.finetune_lr,
            val=val,
            workdir=workdir,
            config={
                **cfg.to_dict(),
                "finetuned_from": pre_name,
                "frozen_encoder": frozen_encoder,
                "identity": ident,
            },
            init_params=params,
            trainable_labels=train.trainable_labels(params) if frozen_encoder else None,
            seed=self.seed,
            progress=self.progress,
        )
        return model, res.best_params

    def finetune_ubert(self, pre: tuple, pre_name: str, K: int, N: int, *, samples: int | None = None, P=POWERS):
        """Supervised fine-tuning of a pre-trained UBERT on all three tasks at (K, N) (Sec. V-C2): nothing is
        re-initialised. ``samples`` labelled samples per task (default: the budget's fine-tuning size)."""
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
        name = f"ubert_{pre_name}_to_{K}x{N}_n{samples}{self._ft_tag()}-{fingerprint(request)}"
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
        )
        return pre[0], params

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
    from jaxbeam.data import split_ids

    return dataclasses.replace(labels, split_ids=split_ids(len(labels), 0))


def sum_loss(sigma2: float, Pc: float, sets: dict):
    """The Sum Loss of eq. 32 in the multi-task setting: each sample's loss is minus the utility of its own
    task, in that task's units (bit/s/Hz for SR and MR, bit/s/Hz/W for EE), so the batch mean sums the
    three tasks' negative utilities. Metrics as :func:`jaxbeam.losses_multitask.make_multitask_loss`."""
    scale = [float(np.mean(sets[t].split("val").U)) for t in jb.TASKS]
    base = make_multitask_loss(sigma2=sigma2, Pc=Pc, utility_scale=scale)

    def loss_fn(W, batch):
        _, metrics = base(W, batch)
        return -metrics["task_utility"], metrics

    return loss_fn


# ----------------------------------------------------------------------------------------- results
def write_report(name: str, report: Report, results: Path, settings: dict, seconds: float) -> Path:
    """``results/NAME.md`` (table + settings), ``NAME.json`` (raw numbers) and ``NAME.png`` (if a plot)."""
    results.mkdir(parents=True, exist_ok=True)
    md = [f"# {report.title}", "", markdown_table(report.header, report.rows, ".2f"), ""]
    if report.notes:
        md += [report.notes.strip(), ""]
    md += [
        "Settings: " + ", ".join(f"{k} = {v}" for k, v in settings.items()),
        "",
        *(
            [f"Training budget: {settings['training_budget']}" + _budget_note(settings), ""]
            if "training_budget" in settings
            else []
        ),
        f"Run time: {seconds / 60:.1f} min on {jax.devices()[0].device_kind} x{jax.device_count()} "
        f"(jax {jax.__version__}). Reproduce: `python -m experiments.{name} --preset {settings['preset']}`.",
        "",
    ]
    (results / f"{name}.md").write_text("\n".join(md))
    payload = {"name": name, "title": report.title, "settings": settings, "seconds": seconds, "raw": report.raw}
    (results / f"{name}.json").write_text(json.dumps(payload, indent=2, default=float))
    if report.plot is not None:
        import matplotlib

        matplotlib.use("Agg")
        report.plot(results / f"{name}.png")
    return results / f"{name}.md"


def _budget_note(settings: dict) -> str:
    if settings.get("machine_dependent"):
        return (
            " per model: a clock, so these numbers are MACHINE-DEPENDENT (another machine trains more or fewer steps)."
        )
    return " per model (fixed: the same numbers on any machine)."


def parse_args(name: str, doc: str, argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog=f"python -m experiments.{name}", description=doc.split("\n\n")[0])
    ap.add_argument("--preset", choices=tuple(BUDGETS), default="cpu", help="data / training budget (default cpu)")
    ap.add_argument("--runs", type=Path, help="cache of labels and models (default runs/experiments/<preset>)")
    ap.add_argument("--results", type=Path, default=Path("results"), help="output folder (default results)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    ap.add_argument("--finetune-epochs", type=int, help="fine-tuning epochs (default: the preset's)")
    ap.add_argument("--finetune-lr", type=float, help="fine-tuning learning rate (default: the preset's)")
    ap.add_argument("--steps", type=int, help="training steps per model (default: the preset's; UBERT x 3)")
    ap.add_argument(
        "--minutes", type=float, help="train each model on a clock of this many minutes (machine-dependent results)"
    )
    args = ap.parse_args(argv)
    if args.steps is not None and args.steps < 1:
        ap.error(f"--steps must be a positive integer; got {args.steps}")
    if args.minutes is not None and not args.minutes > 0:
        ap.error(f"--minutes must be positive; got {args.minutes}")
    if args.steps is not None and args.minutes is not None:
        ap.error("give --steps or --minutes, not both")
    if args.finetune_epochs is not None and args.finetune_epochs < 1:
        ap.error(f"--finetune-epochs must be a positive integer; got {args.finetune_epochs}")
    if args.finetune_lr is not None and not args.finetune_lr > 0:
        ap.error(f"--finetune-lr must be positive; got {args.finetune_lr}")
    return args


def budget_from_args(args: argparse.Namespace) -> Budget:
    """The preset's :class:`Budget` with the command line's overrides (fine-tuning, ``--steps``, ``--minutes``)."""
    over = {"finetune_epochs": args.finetune_epochs, "finetune_lr": args.finetune_lr}
    budget = dataclasses.replace(BUDGETS[args.preset], **{k: v for k, v in over.items() if v is not None})
    if getattr(args, "steps", None) is not None:
        budget = dataclasses.replace(budget, steps=args.steps, minutes=None)
    if getattr(args, "minutes", None) is not None:
        budget = dataclasses.replace(budget, minutes=args.minutes, steps=None)
    return budget


def run_experiment(name: str, doc: str, body: Callable[[Context], Report], argv=None) -> Report:
    """Parse the command line, run ``body`` on a :class:`Context`, print the table and write the files."""
    args = parse_args(name, doc, argv)
    runs = args.runs or Path("runs") / "experiments" / args.preset
    ctx = Context(args.preset, runs, seed=args.seed, progress=not args.quiet, budget=budget_from_args(args))
    t0 = time.perf_counter()
    report = body(ctx)
    seconds = time.perf_counter() - t0
    train_budget = ctx.budget.train_budget()
    settings = {
        "preset": args.preset,
        **dataclasses.asdict(ctx.budget),
        "seed": args.seed,
        "training_budget": describe_budget(train_budget),
        "machine_dependent": train_budget["machine_dependent"],
    }
    path = write_report(name, report, args.results, settings, seconds)
    print(f"\n{report.title}\n\n{markdown_table(report.header, report.rows, '.2f')}\n")
    print(f"wrote {path} ({seconds / 60:.1f} min)")
    return report


def pct(x) -> str:
    return "-" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.2f}"
