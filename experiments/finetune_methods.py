"""Fine-tuning methods (paper 003 Table VII style): BERT pre-trained at (6, 12), fine-tuned to (8, 15) (Table V's
first new system) with every parameter, the frozen encoder, LoRA and MoE-LoRA.

    python -m experiments.finetune_methods --preset cpu

Unsupervised fine-tuning (eq. 18) on the budget's ``finetune_samples`` channels for ``finetune_epochs`` epochs
(the same budget for every method); the N-dependent embedding and output layer are re-initialised and
trained by every method (Sec. IV-C2). LoRA: rank 8 adapters on the encoder's attention projections; MoE-LoRA:
4 such experts per layer gated by the task id (003 eq. 24). Reported per method: trainable parameters, the
fine-tuning's training seconds (this machine, compilation excluded) and eq. 31 performance on fresh labelled
channels at (8, 15) (P in {1, 2, 3} pooled), RZF, RZF_BAL and WMMSE beside. :data:`SWEEP` adds LoRA's rank and
MoE-LoRA's number of experts (003 Fig. 7 style; alpha = 2 r throughout), plotted against the trainable parameters.

UBERT (pre-trained at (6, 12) on all three tasks) is fine-tuned to (8, 15) once per method with labels (Sec.
V-C2): every parameter, or the frozen model with LoRA / MoE-LoRA adapters whose expert gate reads each sample's
task token (003's multi-task setting); one run serves SR, MR and EE (MoE-LoRA merged per task for evaluation).
"""

from __future__ import annotations

import json

import jax
import numpy as np

import jaxbeam as jb
from experiments.common import ADAPTERS, REF_HEADER, REFS, Context, Report, pool, run_experiment
from jaxbeam import train
from jaxbeam.jobs.pretrain import task_params
from jaxbeam.models import lora

SOURCE, TARGET = (6, 12), (8, 15)
UTILITIES = ("sr", "mr")
METHODS = {
    "full": {},
    "frozen encoder": {"frozen_encoder": True},
    "LoRA r = 8": {"adapter": ADAPTERS["LoRA"]},
    "MoE-LoRA r = 8, 4 experts": {"adapter": ADAPTERS["MoE-LoRA"]},
}
# 003 Fig. 7 style: LoRA's rank and MoE-LoRA's number of experts (BERT; the 4 METHODS rows hold r = 8 and 4 experts)
SWEEP = {
    "LoRA r = 2": {"adapter": lora.LoRAConfig(rank=2, alpha=4.0)},
    "LoRA r = 4": {"adapter": lora.LoRAConfig(rank=4, alpha=8.0)},
    "LoRA r = 16": {"adapter": lora.LoRAConfig(rank=16, alpha=32.0)},
    "MoE-LoRA r = 8, 2 experts": {"adapter": lora.LoRAConfig(rank=8, experts=2)},
    "MoE-LoRA r = 8, 8 experts": {"adapter": lora.LoRAConfig(rank=8, experts=8)},
}
UBERT_METHODS = {"full": None, "LoRA r = 8": ADAPTERS["LoRA"], "MoE-LoRA r = 8, 4 experts": ADAPTERS["MoE-LoRA"]}


def trainable_count(params, kw: dict) -> int:
    """Parameters a method trains: all, or the embedding and output layer plus the adapters."""
    if not kw:
        return sum(int(np.size(x)) for x in jax.tree.leaves(params))
    labels = train.trainable_labels(params)
    n = sum(
        int(np.size(x)) for x, t in zip(jax.tree.leaves(params), jax.tree.leaves(labels), strict=True) if t == "train"
    )
    if "adapter" in kw:
        n += lora.count(jax.eval_shape(lambda: lora.init(jax.random.key(0), params, kw["adapter"])))
    return n


def _seconds(workdir) -> float:
    """Training seconds of a finished run (the last record of its ``metrics.jsonl``)."""
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    return json.loads(lines[-1]).get("train_seconds", float("nan")) if lines else float("nan")


def plot_methods(path, raw: list[dict], title: str) -> None:
    """003 Fig. 7 style: performance against trainable parameters, one marker series per model and utility."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for kind, u in sorted({(r["kind"], r["utility"]) for r in raw}):
        pts = sorted((r["trainable"], r["model"]) for r in raw if (r["kind"], r["utility"]) == (kind, u))
        marker = "o" if kind == "bert" else "s"  # points, not lines: the methods are not one family
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker, label=f"{kind.upper()} {u.upper()}")
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters")
    ax.set_ylabel("performance, eq. 31 [%]")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def body(ctx: Context) -> Report:
    rows, raw = [], []
    (K0, N0), (K, N) = ctx.grid([SOURCE])[0], ctx.grid([TARGET])[0]
    for u in ctx.grid(UTILITIES):
        pre = ctx.pretrained("bert", u, K0, N0)
        test = ctx.labels(u, K, N, test=True)
        for name, kw in [*METHODS.items(), *ctx.grid(SWEEP.items())]:
            model, params, res = ctx.finetune_bert(pre, f"{u}_{K0}x{N0}", u, K, N, result=True, **kw)
            r = pool(ctx.evaluate(u, test, model, params, name="model", references=REFS))
            count = trainable_count(params, kw)
            seconds = res.history[-1]["train_seconds"] if res.history else float("nan")
            rows.append(["BERT", u.upper(), name, f"{count:,}", f"{seconds:.1f}", r["model"]] + [r[k] for k in REFS])
            raw.append({"kind": "bert", "utility": u, "method": name, "trainable": count, "seconds": seconds, **r})
    # UBERT: one multi-task fine-tuning per method (supervised, Sec. V-C2); MoE-LoRA's gate reads the task token
    ubert0 = ctx.pretrained_ubert(K0, N0)
    for name, adapter in UBERT_METHODS.items():
        model, tree, workdir = ctx.finetune_ubert(ubert0, f"{K0}x{N0}", K, N, adapter=adapter, with_workdir=True)
        count = lora.count(tree["lora"]) if adapter else sum(int(np.size(x)) for x in jax.tree.leaves(tree))
        seconds = _seconds(workdir)
        for u in ctx.grid(UTILITIES):
            params = tree if adapter is None else task_params(tree, adapter, jb.TASKS.index(u))
            test = ctx.labels(u, K, N, test=True)
            r = pool(ctx.evaluate(u, test, model, params, ubert=True, name="model", references=REFS))
            rows.append(["UBERT", u.upper(), name, f"{count:,}", f"{seconds:.1f}", r["model"]] + [r[k] for k in REFS])
            raw.append({"kind": "ubert", "utility": u, "method": name, "trainable": count, "seconds": seconds, **r})
    header = ["model", "utility", "method", "trainable params", "train s", "model %", *REF_HEADER]
    title = f"Fine-tuning methods, ({K0}, {N0}) -> ({K}, {N}), eq. 31 (% of the label solver)"

    return Report(title, header, rows, raw, plot=lambda path: plot_methods(path, raw, title))


def main(argv=None):
    return run_experiment("finetune_methods", __doc__, body, argv)


if __name__ == "__main__":
    main()
