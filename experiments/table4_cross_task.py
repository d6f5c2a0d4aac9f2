"""Table IV: cross-task fine-tuning with a frozen encoder: BERT pre-trained on one utility at (8, 16), its
encoder blocks frozen, embedding and output layer fine-tuned (eq. 18) on another utility at (6, 11) and
(6, 13); beside it, the same encoder frozen with LoRA or MoE-LoRA adapters on it (:data:`ADAPTERS`, papers
003-004), same samples and budget.

    python -m experiments.table4_cross_task --preset cpu

Tested on fresh labelled channels of the fine-tuning system (P in {1, 2, 3} pooled); RZF, RZF_BAL and WMMSE beside.
"""

from __future__ import annotations

from experiments.common import ADAPTERS, REF_HEADER, REFS, Context, Report, pool, run_experiment

PRE = (8, 16)
SYSTEMS = ((6, 11), (6, 13))
PAIRS = (("sr", "mr"), ("sr", "ee"), ("mr", "sr"), ("mr", "ee"), ("ee", "sr"), ("ee", "mr"))
# Table IV of the paper: PAPER[(pre-training task, fine-tuning task)] = ((6, 11), (6, 13)) in %
PAPER = {
    ("sr", "mr"): (95.12, 95.96),
    ("sr", "ee"): (101.12, 100.28),
    ("mr", "sr"): (98.79, 98.79),
    ("mr", "ee"): (101.13, 100.36),
    ("ee", "sr"): (98.90, 98.88),
    ("ee", "mr"): (95.24, 96.11),
}


def body(ctx: Context) -> Report:
    rows, raw = [], []
    for pre_u, u in ctx.grid(PAIRS):
        pre, name = ctx.pretrained("bert", pre_u, *PRE), f"{pre_u}_{PRE[0]}x{PRE[1]}"
        for i, (K, N) in enumerate(ctx.grid(SYSTEMS)):
            test = ctx.labels(u, K, N, test=True)
            ft = ctx.finetune_bert(pre, name, u, K, N, frozen_encoder=True)
            r = pool(ctx.evaluate(u, test, *ft, name="bert", references=REFS))
            for col, adapter in ADAPTERS.items():
                ft = ctx.finetune_bert(pre, name, u, K, N, adapter=adapter)
                r[col] = pool(ctx.evaluate(u, test, *ft, name=col, references=()))[col]
            rows.append(
                [pre_u.upper(), u.upper(), f"({K}, {N})", r["bert"], PAPER[(pre_u, u)][i], *(r[c] for c in ADAPTERS)]
                + [r[k] for k in REFS]
            )
            raw.append({"pretrain_task": pre_u, "finetune_task": u, "system": [K, N], **r})
    header = ["pre-training task", "fine-tuning task", "system", "frozen %", "paper %"]
    header += [f"{c} %" for c in ADAPTERS] + REF_HEADER
    return Report("Table IV: cross-task fine-tuning, frozen encoder (eq. 31)", header, rows, raw)


def main(argv=None):
    return run_experiment("table4_cross_task", __doc__, body, argv)


if __name__ == "__main__":
    main()
