"""Fine-tuning methods (paper 003 Table VII style): BERT pre-trained at (6, 12), fine-tuned to (8, 15) (Table V's
first new system) with every parameter, the frozen encoder, LoRA and MoE-LoRA.

    python -m experiments.finetune_methods --preset cpu

Unsupervised fine-tuning (eq. 18) on the budget's ``finetune_samples`` channels for ``finetune_epochs`` epochs
(the same budget for every method); the N-dependent embedding and output layer are re-initialised and
trained by every method (Sec. IV-C2). LoRA: rank 8 adapters on the encoder's attention projections; MoE-LoRA:
4 such experts per layer gated by the task id (003 eq. 24). Reported per method: trainable parameters, the
fine-tuning's training seconds (this machine, compilation excluded) and eq. 31 performance on fresh labelled
channels at (8, 15) (P in {1, 2, 3} pooled), RZF, RZF_BAL and WMMSE beside.
"""

from __future__ import annotations

import jax
import numpy as np

from experiments.common import REF_HEADER, REFS, Context, Report, pool, run_experiment
from jaxbeam import train
from jaxbeam.models import lora

SOURCE, TARGET = (6, 12), (8, 15)
UTILITIES = ("sr", "mr")
METHODS = {
    "full": {},
    "frozen encoder": {"frozen_encoder": True},
    "LoRA r = 8": {"adapter": lora.LoRAConfig(rank=8)},
    "MoE-LoRA r = 8, 4 experts": {"adapter": lora.LoRAConfig(rank=8, experts=4)},
}


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


def body(ctx: Context) -> Report:
    rows, raw = [], []
    (K0, N0), (K, N) = ctx.grid([SOURCE])[0], ctx.grid([TARGET])[0]
    for u in ctx.grid(UTILITIES):
        pre = ctx.pretrained("bert", u, K0, N0)
        test = ctx.labels(u, K, N, test=True)
        for name, kw in METHODS.items():
            model, params, res = ctx.finetune_bert(pre, f"{u}_{K0}x{N0}", u, K, N, result=True, **kw)
            r = pool(ctx.evaluate(u, test, model, params, name="bert", references=REFS))
            count = trainable_count(params, kw)
            seconds = res.history[-1]["train_seconds"] if res.history else float("nan")
            rows.append([u.upper(), name, f"{count:,}", f"{seconds:.1f}", r["bert"]] + [r[k] for k in REFS])
            raw.append({"utility": u, "method": name, "trainable": count, "seconds": seconds, **r})
    header = ["utility", "method", "trainable params", "train s", "BERT %", *REF_HEADER]
    title = f"Fine-tuning methods, BERT ({K0}, {N0}) -> ({K}, {N}), eq. 31 (% of the label solver)"
    return Report(title, header, rows, raw)


def main(argv=None):
    return run_experiment("finetune_methods", __doc__, body, argv)


if __name__ == "__main__":
    main()
