"""Table VIII: UBERT ablation: the full model against UBERT* (no positional encoding, eq. 21 dropped) and
UBERT-dagger (no task embedding, eqs. 25-26 dropped) at (6, 12) and (8, 16).

    python -m experiments.table8_ubert_ablation --preset cpu

Same data, sampling and budget for the three. The paper: both removals hurt (UBERT* to 27-40 %, UBERT-dagger
to 54-81 %).
"""

from __future__ import annotations

from experiments.common import REF_HEADER, REFS, Context, Report, pool, run_experiment

SYSTEMS = ((6, 12), (8, 16))
UTILITIES = ("sr", "mr", "ee")
VARIANTS = {"full": "UBERT", "no_pos": "UBERT* (no positional)", "no_task": "UBERT-dagger (no task)"}
# Table VIII of the paper: PAPER[variant][utility] = ((6, 12), (8, 16)) in %
PAPER = {
    "full": {"sr": (99.63, 99.60), "mr": (98.29, 98.04), "ee": (97.85, 97.39)},
    "no_pos": {"sr": (40.01, 38.44), "mr": (28.15, 27.35), "ee": (35.71, 33.68)},
    "no_task": {"sr": (79.64, 78.89), "mr": (57.44, 53.95), "ee": (81.33, 80.16)},
}


def body(ctx: Context) -> Report:
    rows, raw = [], []
    for i, (K, N) in enumerate(ctx.grid(SYSTEMS)):
        tests = {u: ctx.labels(u, K, N).split("test") for u in UTILITIES}
        refs = {u: pool(ctx.evaluate(u, tests[u], references=REFS)) for u in UTILITIES}
        for variant, label in VARIANTS.items():
            ubert = ctx.pretrained_ubert(K, N, variant=variant)
            for u in UTILITIES:
                r = pool(ctx.evaluate(u, tests[u], *ubert, ubert=True, name="ubert", references=()))
                rows.append(
                    [label, u.upper(), f"({K}, {N})", r["ubert"], PAPER[variant][u][i]] + [refs[u][k] for k in REFS]
                )
                raw.append({"variant": variant, "utility": u, "system": [K, N], **r, **refs[u]})
    by = {(x["variant"], x["utility"], tuple(x["system"])): x["ubert"] for x in raw}
    checks = []
    for v, u, s in by:
        if v != "full":
            ours, full = by[(v, u, s)], by[("full", u, s)]
            checks.append(f"{VARIANTS[v]} {u.upper()} {s}: {ours:.2f} < full {full:.2f}: {ours < full}")
    notes = "Does removing a component hurt, as the paper reports?\n" + "\n".join(f"- {x}" for x in checks)
    header = ["model", "utility", "system", "ours %", "paper %", *REF_HEADER]
    return Report("Table VIII: UBERT ablation (eq. 31)", header, rows, raw, notes)


def main(argv=None):
    return run_experiment("table8_ubert_ablation", __doc__, body, argv)


if __name__ == "__main__":
    main()
