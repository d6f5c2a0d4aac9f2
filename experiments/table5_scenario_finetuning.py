"""Table V: scenario-adaptation fine-tuning: pre-trained at (6, 12) -> fine-tuned at (8, 15), (8, 17); pre-trained
at (8, 16) -> fine-tuned at (6, 11), (6, 13).

    python -m experiments.table5_scenario_finetuning --preset cpu

BERT: unsupervised fine-tuning (eq. 18) on ``finetune_samples`` channels for ``finetune_epochs`` epochs, the
encoder blocks loaded and the N-dependent embedding and output layer re-initialised (Sec. IV-C2); beside every
parameter trained (the paper's), the encoder frozen with LoRA or MoE-LoRA adapters (:data:`ADAPTERS`, papers
003-004) on the same samples and budget. UBERT:
supervised fine-tuning on as many labelled samples per task, nothing re-initialised (Sec. V-C2). Tested on
fresh labelled channels at the new system (P in {1, 2, 3} pooled), RZF, RZF_BAL and WMMSE beside.
"""

from __future__ import annotations

from experiments.common import ADAPTERS, REF_HEADER, REFS, Context, Report, pool, run_experiment

TARGETS = {(6, 12): ((8, 15), (8, 17)), (8, 16): ((6, 11), (6, 13))}
UTILITIES = ("sr", "mr", "ee")
# Table V of the paper: PAPER[(pre K, N)][model][(K, N)] = (SR, MR, EE) in %
PAPER = {
    (6, 12): {
        "bert": {(8, 15): (97.76, 94.17, 90.83), (8, 17): (96.76, 93.66, 81.48)},
        "ubert": {(8, 15): (99.12, 96.33, 86.62), (8, 17): (99.10, 96.85, 88.56)},
    },
    (8, 16): {
        "bert": {(6, 11): (98.77, 96.87, 100.11), (6, 13): (98.83, 97.26, 100.14)},
        "ubert": {(6, 11): (99.39, 97.17, 96.77), (6, 13): (99.50, 98.01, 97.20)},
    },
}


def body(ctx: Context) -> Report:
    rows, raw = [], []
    for (K0, N0), targets in ctx.grid(TARGETS.items()):
        ubert0 = ctx.pretrained_ubert(K0, N0)
        for K, N in ctx.grid(targets):
            ubert = ctx.finetune_ubert(ubert0, f"{K0}x{N0}", K, N)
            for u in ctx.grid(UTILITIES):
                pre, name = ctx.pretrained("bert", u, K0, N0), f"{u}_{K0}x{N0}"
                test = ctx.labels(u, K, N, test=True)
                r = pool(ctx.evaluate(u, test, *ctx.finetune_bert(pre, name, u, K, N), name="bert", references=REFS))
                for col, adapter in ADAPTERS.items():
                    ft = ctx.finetune_bert(pre, name, u, K, N, adapter=adapter)
                    r[col] = pool(ctx.evaluate(u, test, *ft, name=col, references=()))[col]
                r["ubert"] = pool(ctx.evaluate(u, test, *ubert, ubert=True, name="ubert", references=()))["ubert"]
                paper = [PAPER[(K0, N0)][kind][(K, N)][UTILITIES.index(u)] for kind in ("bert", "ubert")]
                rows.append(
                    [f"({K0}, {N0})", f"({K}, {N})", u.upper(), r["bert"], *(r[c] for c in ADAPTERS), r["ubert"]]
                    + paper
                    + [r[k] for k in REFS]
                )
                raw.append({"pretrained": [K0, N0], "target": [K, N], "utility": u, **r})
    header = ["pre-trained", "fine-tuned at", "utility", "BERT %", *(f"BERT {c} %" for c in ADAPTERS), "UBERT %"]
    header += ["paper BERT %", "paper UBERT %", *REF_HEADER]
    return Report("Table V: scenario-adaptation fine-tuning (eq. 31)", header, rows, raw)


def main(argv=None):
    return run_experiment("table5_scenario_finetuning", __doc__, body, argv)


if __name__ == "__main__":
    main()
