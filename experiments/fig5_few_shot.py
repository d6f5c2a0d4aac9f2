"""Fig. 5: few-shot fine-tuning at (6, 11) with 200, 400, 600, 800 and 1,000 samples: BERT (pre-trained at
(6, 12), unsupervised eq. 18, embedding and output layer re-initialised for N = 11) and UBERT (pre-trained at
(6, 12), supervised, nothing re-initialised).

    python -m experiments.fig5_few_shot --preset cpu

BERT is also fine-tuned with its encoder frozen under LoRA or MoE-LoRA adapters (:data:`ADAPTERS`, papers
003-004). Tested on fresh labelled channels at (6, 11), P in {1, 2, 3} pooled. The paper (figure only): both
improve with more samples; at 600 samples UBERT exceeds 80 % on every task and BERT 65 %.
"""

from __future__ import annotations

from experiments.common import ADAPTERS, REF_HEADER, REFS, Context, Report, pool, run_experiment

SHOTS = (200, 400, 600, 800, 1000)
UTILITIES = ("sr", "mr", "ee")
PRE, TARGET = (6, 12), (6, 11)


def body(ctx: Context) -> Report:
    shots = [min(s, ctx.budget.finetune_samples) for s in ctx.grid(SHOTS)]
    ubert0 = ctx.pretrained_ubert(*PRE)
    res, rows, refs = {}, [], {}
    for n in shots:
        ubert = ctx.finetune_ubert(ubert0, f"{PRE[0]}x{PRE[1]}", *TARGET, samples=n)
        for u in ctx.grid(UTILITIES):
            pre, name = ctx.pretrained("bert", u, *PRE), f"{u}_{PRE[0]}x{PRE[1]}"
            bert = ctx.finetune_bert(pre, name, u, *TARGET, samples=n)
            test = ctx.labels(u, *TARGET, test=True)
            if u not in refs:
                refs[u] = pool(ctx.evaluate(u, test, references=REFS))
            r = pool(ctx.evaluate(u, test, *bert, name="bert", references=()))
            for col, adapter in ADAPTERS.items():
                ft = ctx.finetune_bert(pre, name, u, *TARGET, samples=n, adapter=adapter)
                r[col] = pool(ctx.evaluate(u, test, *ft, name=col, references=()))[col]
            r["ubert"] = pool(ctx.evaluate(u, test, *ubert, ubert=True, name="ubert", references=()))["ubert"]
            r.update({k: refs[u][k] for k in REFS})
            res[(u, n)] = r
            rows.append([u.upper(), n, r["bert"], *(r[c] for c in ADAPTERS), r["ubert"]] + [r[k] for k in REFS])

    def plot(path):
        import matplotlib.pyplot as plt

        us = sorted({u for u, _ in res}, key=UTILITIES.index)
        fig, axes = plt.subplots(1, len(us), figsize=(5 * len(us), 3.6), squeeze=False)
        for ax, u in zip(axes[0], us, strict=True):
            ns = [n for (uu, n) in res if uu == u]
            styles = (("bert", "o-"), ("LoRA", "^-"), ("MoE-LoRA", "v-"), ("ubert", "s-"))
            for col, style in (*styles, ("rzf", "k--"), ("rzf_bal", "k-."), ("wmmse", "k:")):
                ax.plot(ns, [res[(u, n)][col] for n in ns], style, label=col if "LoRA" in col else col.upper())
            ax.set_xlabel("fine-tuning samples")
            ax.set_ylabel("performance, eq. 31 [%]")
            ax.set_title(f"{u.upper()} at {TARGET}")
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)

    raw = [{"utility": u, "samples": n, **r} for (u, n), r in res.items()]
    header = ["utility", "samples", "BERT %", *(f"BERT {c} %" for c in ADAPTERS), "UBERT %", *REF_HEADER]
    return Report("Fig. 5: few-shot fine-tuning at (6, 11) (eq. 31)", header, rows, raw, plot=plot)


def main(argv=None):
    return run_experiment("fig5_few_shot", __doc__, body, argv)


if __name__ == "__main__":
    main()
