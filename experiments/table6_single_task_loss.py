"""Table VI: single-task pre-training loss: the proposed supervised loss (eq. 17) against the negative
objective (eq. 18) for BERT at (6, 12) and (8, 16).

    python -m experiments.table6_single_task_loss --preset cpu

Same data, model and budget for both losses; performance pools P in {1, 2, 3} on the test split. The paper
trains "on a small dataset" here; we use the preset's pre-training set.
"""

from __future__ import annotations

from experiments.common import REF_HEADER, REFS, Context, Report, pool, run_experiment

SYSTEMS = ((6, 12), (8, 16))
UTILITIES = ("sr", "mr", "ee")
# Table VI of the paper: PAPER[loss][utility] = ((6, 12), (8, 16)) in %
PAPER = {
    "supervised": {"sr": (94.75, 92.51), "mr": (88.72, 82.30), "ee": (94.15, 91.33)},
    "objective": {"sr": (91.87, 89.67), "mr": (46.36, 62.68), "ee": (94.11, 91.51)},
}


def body(ctx: Context) -> Report:
    rows, raw = [], []
    for i, (K, N) in enumerate(ctx.grid(SYSTEMS)):
        for u in ctx.grid(UTILITIES):
            test = ctx.labels(u, K, N).split("test")
            ref = pool(ctx.evaluate(u, test, references=REFS))
            for loss in ("supervised", "objective"):
                r = pool(ctx.evaluate(u, test, *ctx.pretrained("bert", u, K, N, loss=loss), name="bert", references=()))
                name = "proposed (eq. 17)" if loss == "supervised" else "objective (eq. 18)"
                rows.append([name, u.upper(), f"({K}, {N})", r["bert"], PAPER[loss][u][i]] + [ref[k] for k in REFS])
                raw.append({"loss": loss, "utility": u, "system": [K, N], "ours": r["bert"], **ref})
    header = ["loss", "utility", "system", "ours %", "paper %", *REF_HEADER]
    return Report("Table VI: single-task pre-training loss (BERT, eq. 31)", header, rows, raw)


def main(argv=None):
    return run_experiment("table6_single_task_loss", __doc__, body, argv)


if __name__ == "__main__":
    main()
