"""Table II: power generalisation: GAT, BERT and UBERT pre-trained at P = 1 W only, tested at P = 2 and 3 W.

    python -m experiments.table2_power_generalization --preset cpu

The GPA (eq. 15) scales the same beams to any budget, so a model trained at one P can be used at another.
Test sets are labelled at P = 2 and 3 W on fresh channels; RZF, RZF_BAL and WMMSE are evaluated on them beside.
"""

from __future__ import annotations

from experiments.common import REF_HEADER, REFS, Context, Report, run_experiment

SYSTEMS = ((6, 12), (8, 16))
UTILITIES = ("sr", "mr", "ee")
# Table II of the paper: PAPER[(K, N)][P][model] = (SR, MR, EE) in %
PAPER = {
    (6, 12): {
        2.0: {"gat": (85.10, 74.31, 78.34), "bert": (98.83, 97.26, 91.16), "ubert": (99.01, 97.02, 94.78)},
        3.0: {"gat": (81.79, 70.28, 68.88), "bert": (98.07, 96.00, 82.93), "ubert": (98.31, 95.71, 91.89)},
    },
    (8, 16): {
        2.0: {"gat": (82.03, 70.11, 75.37), "bert": (98.91, 97.95, 94.46), "ubert": (98.93, 97.14, 94.18)},
        3.0: {"gat": (78.38, 65.96, 63.13), "bert": (98.15, 96.89, 82.71), "ubert": (98.17, 95.57, 91.02)},
    },
}


def body(ctx: Context) -> Report:
    rows, raw = [], []
    tests = ctx.grid((2.0, 3.0))
    for K, N in ctx.grid(SYSTEMS):
        ubert = ctx.pretrained_ubert(K, N, P=(1.0,))
        for u in ctx.grid(UTILITIES):
            test = ctx.labels(u, K, N, P=tests, test=True)
            ref = {r["P"]: r for r in ctx.evaluate(u, test, references=REFS)}
            for kind in ("gat", "bert", "ubert"):
                m = ubert if kind == "ubert" else ctx.pretrained(kind, u, K, N, P=(1.0,))
                per_p = ctx.evaluate(u, test, *m, ubert=kind == "ubert", name=kind, references=())
                for r in per_p:
                    paper = PAPER[(K, N)][r["P"]][kind][("sr", "mr", "ee").index(u)]
                    rows.append(
                        [f"({K}, {N})", f"{r['P']:g}", u.upper(), kind.upper(), r[kind], paper]
                        + [ref[r["P"]][k] for k in REFS]
                    )
                    raw.append({**r, "model": kind, "paper": paper, **{k: ref[r["P"]][k] for k in REFS}})
    header = ["system", "test P [W]", "utility", "model", "ours %", "paper %", *REF_HEADER]
    return Report("Table II: trained at P = 1 W, tested at P = 2, 3 W (eq. 31)", header, rows, raw)


def main(argv=None):
    return run_experiment("table2_power_generalization", __doc__, body, argv)


if __name__ == "__main__":
    main()
