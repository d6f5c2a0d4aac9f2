"""Table VII: multi-task pre-training loss: UBERT with the proposed loss (eqs. 29-30) against the Sum Loss of
eq. 32 (minus the sum of the three tasks' utilities, each in its own units) at (6, 12) and (8, 16).

    python -m experiments.table7_multi_task_loss --preset cpu

Same data, model, sampling (Algorithm 1) and budget for both. The paper: the Sum Loss fails to converge
(under 10 % on every task).
"""

from __future__ import annotations

from experiments.common import Context, Report, pool, run_experiment

SYSTEMS = ((6, 12), (8, 16))
UTILITIES = ("sr", "mr", "ee")
# Table VII of the paper: PAPER[loss][utility] = ((6, 12), (8, 16)) in %
PAPER = {
    "proposed": {"sr": (98.90, 98.83), "mr": (96.55, 95.66), "ee": (92.93, 91.74)},
    "sum": {"sr": (9.31, 3.70), "mr": (1.61, 2.26), "ee": (8.62, 3.68)},
}


def body(ctx: Context) -> Report:
    rows, raw = [], []
    for i, (K, N) in enumerate(ctx.grid(SYSTEMS)):
        for loss in ("proposed", "sum"):
            ubert = ctx.pretrained_ubert(K, N, loss=loss)
            for u in UTILITIES:
                test = ctx.labels(u, K, N).split("test")
                r = pool(ctx.evaluate(u, test, *ubert, ubert=True, name="ubert", references=("rzf",)))
                name = "proposed (eq. 30)" if loss == "proposed" else "Sum Loss (eq. 32)"
                rows.append([name, u.upper(), f"({K}, {N})", r["ubert"], PAPER[loss][u][i], r["rzf"]])
                raw.append({"loss": loss, "utility": u, "system": [K, N], **r})
    by = {(x["loss"], x["utility"], tuple(x["system"])): x["ubert"] for x in raw}
    fails = []
    for loss, u, s in by:
        if loss == "sum":
            ours, proposed = by[(loss, u, s)], by[("proposed", u, s)]
            fails.append(f"{u.upper()} {s}: sum {ours:.2f} < proposed {proposed:.2f}: {ours < proposed}")
    notes = "Does the Sum Loss do worse, as the paper reports?\n" + "\n".join(f"- {x}" for x in fails)
    header = ["loss", "utility", "system", "ours %", "paper %", "RZF %"]
    return Report("Table VII: multi-task pre-training loss (UBERT, eq. 31)", header, rows, raw, notes)


def main(argv=None):
    return run_experiment("table7_multi_task_loss", __doc__, body, argv)


if __name__ == "__main__":
    main()
