"""Table VII: multi-task pre-training loss: UBERT with the proposed loss (eqs. 29-30) against the Sum Loss of
eq. 32 (minus the sum of the three tasks' utilities, each in its own units) at (6, 12) and (8, 16).

    python -m experiments.table7_multi_task_loss --preset cpu

Same data, model, sampling (Algorithm 1) and budget for both. The paper: the Sum Loss fails to converge
(under 10 % on every task). Both losses are run with our default (balanced) head and, at (6, 12), with the
paper's element-wise output layer (eq. 28), to tell the loss's effect from the head's. A third row weighs
eq. 30's task losses by Dynamic Weight Average (paper 003 Sec. IV-D, :mod:`jaxbeam.train.task_weighting`)
instead of eq. 29's plain sum (default head; no paper number).
"""

from __future__ import annotations

from experiments.common import REF_HEADER, REFS, Context, Report, pool, run_experiment

SYSTEMS = ((6, 12), (8, 16))
UTILITIES = ("sr", "mr", "ee")
# our default head, then the paper's element-wise output layer (eq. 28) as a control at the first system:
# does the Sum Loss's collapse come from the loss or from the head?
HEADS = (None, "element")
# Table VII of the paper: PAPER[loss][utility] = ((6, 12), (8, 16)) in %
PAPER = {
    "proposed": {"sr": (98.90, 98.83), "mr": (96.55, 95.66), "ee": (92.93, 91.74)},
    "sum": {"sr": (9.31, 3.70), "mr": (1.61, 2.26), "ee": (8.62, 3.68)},
}
# (loss, task weighting, row name); DWA only with the default head
LOSSES = (
    ("proposed", "equal", "proposed (eq. 30)"),
    ("sum", "equal", "Sum Loss (eq. 32)"),
    ("proposed", "dwa", "eq. 30 + DWA"),
)


def body(ctx: Context) -> Report:
    rows, raw = [], []
    for i, (K, N) in enumerate(ctx.grid(SYSTEMS)):
        tests = {u: ctx.labels(u, K, N).split("test") for u in UTILITIES}
        refs = {u: pool(ctx.evaluate(u, tests[u], references=REFS)) for u in UTILITIES}
        for head in HEADS if i == 0 else HEADS[:1]:
            for loss, weighting, name in LOSSES if head is None else LOSSES[:2]:
                ubert = ctx.pretrained_ubert(K, N, loss=loss, head=head, weighting=weighting)
                for u in UTILITIES:
                    r = pool(ctx.evaluate(u, tests[u], *ubert, ubert=True, name="ubert", references=()))
                    paper = PAPER[loss][u][i] if weighting == "equal" else None
                    rows.append(
                        [name, ubert[0].head, u.upper(), f"({K}, {N})", r["ubert"], "-" if paper is None else paper]
                        + [refs[u][k] for k in REFS]
                    )
                    raw.append(
                        {"loss": loss, "weighting": weighting, "head": ubert[0].head, "utility": u, "system": [K, N]}
                        | r
                        | refs[u]
                    )
    by = {
        (x["loss"], x["head"], x["utility"], tuple(x["system"])): x["ubert"] for x in raw if x["weighting"] == "equal"
    }
    fails = []
    for loss, head, u, s in by:
        if loss == "sum":
            ours, proposed = by[(loss, head, u, s)], by[("proposed", head, u, s)]
            fails.append(f"{head} head, {u.upper()} {s}: sum {ours:.2f} < proposed {proposed:.2f}: {ours < proposed}")
    notes = "Does the Sum Loss do worse, as the paper reports?\n" + "\n".join(f"- {x}" for x in fails)
    header = ["loss", "UBERT head", "utility", "system", "ours %", "paper %", *REF_HEADER]
    return Report("Table VII: multi-task pre-training loss (UBERT, eq. 31)", header, rows, raw, notes)


def main(argv=None):
    return run_experiment("table7_multi_task_loss", __doc__, body, argv)


if __name__ == "__main__":
    main()
