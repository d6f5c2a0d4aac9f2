"""Table III: user-count generalisation: models pre-trained at (6, 12) / (8, 16) tested, unchanged, at
K* in {5, 7} / {7, 9} users.

    python -m experiments.table3_user_generalization --preset cpu

GAT, BERT and UBERT have parameters independent of K (Remark 1), so the Fig. 3 models run on the K* test
sets as they are. Test sets are labelled on fresh channels at P in {1, 2, 3} W (pooled); RZF, RZF_BAL and WMMSE
beside.
"""

from __future__ import annotations

from experiments.common import REF_HEADER, REFS, Context, Report, pool, run_experiment

KSTAR = {(6, 12): (5, 7), (8, 16): (7, 9)}
UTILITIES = ("sr", "mr", "ee")
# Table III of the paper: PAPER[(K, N)][K*][model] = (SR, MR, EE) in %
PAPER = {
    (6, 12): {
        5: {"gat": (85.20, 77.08, 89.06), "bert": (99.31, 98.29, 100.22), "ubert": (97.72, 96.70, 91.20)},
        7: {"gat": (85.91, 73.54, 88.26), "bert": (97.94, 92.45, 100.11), "ubert": (97.79, 93.09, 91.07)},
    },
    (8, 16): {
        7: {"gat": (82.24, 70.58, 84.66), "bert": (99.35, 98.50, 100.56), "ubert": (98.63, 97.08, 91.94)},
        9: {"gat": (83.06, 69.24, 84.38), "bert": (98.42, 94.35, 100.42), "ubert": (98.64, 94.35, 91.97)},
    },
}


def body(ctx: Context) -> Report:
    rows, raw = [], []
    for (K, N), kstars in ctx.grid(KSTAR.items()):
        ubert = ctx.pretrained_ubert(K, N)
        for u in ctx.grid(UTILITIES):
            models = {kind: ctx.pretrained(kind, u, K, N) for kind in ("gat", "bert")}
            for Ks in ctx.grid(kstars):
                test = ctx.labels(u, Ks, N, test=True)
                ref = pool(ctx.evaluate(u, test, references=REFS))
                for kind in ("gat", "bert", "ubert"):
                    m = ubert if kind == "ubert" else models[kind]
                    ours = pool(ctx.evaluate(u, test, *m, ubert=kind == "ubert", name=kind, references=()))[kind]
                    paper = PAPER[(K, N)][Ks][kind][UTILITIES.index(u)]
                    rows.append([f"({K}, {N})", Ks, u.upper(), kind.upper(), ours, paper] + [ref[k] for k in REFS])
                    raw.append(
                        {"system": [K, N], "K*": Ks, "utility": u, "model": kind, "ours": ours, "paper": paper, **ref}
                    )
    header = ["trained at", "K*", "utility", "model", "ours %", "paper %", *REF_HEADER]
    return Report("Table III: generalisation to unseen user counts K* (eq. 31)", header, rows, raw)


def main(argv=None):
    return run_experiment("table3_user_generalization", __doc__, body, argv)


if __name__ == "__main__":
    main()
