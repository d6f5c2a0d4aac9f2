"""Fig. 4: robustness of BERT and UBERT to CSI error at (6, 12): every method sees h_hat_k = h_k + e_k with
||e_k||^2 = mu ||h_k||^2, mu in {-25, -23, -21, -19} dB (Sec. VI-B4); utilities are computed on the true
channels against the perfect-CSI labels.

    python -m experiments.fig4_csi_error --preset cpu

RZF, RZF_BAL and WMMSE computed from the same erroneous estimates are shown beside. The paper (figure only): SR
robust for both models, EE more robust for BERT than UBERT, MR degrades most.
"""

from __future__ import annotations

from experiments.common import REF_HEADER, REFS, Context, Report, pool, run_experiment

MU_DB = (-25.0, -23.0, -21.0, -19.0)
UTILITIES = ("sr", "mr", "ee")
K, N = 6, 12


def body(ctx: Context) -> Report:
    ubert = ctx.pretrained_ubert(K, N)
    res, rows = {}, []
    for u in ctx.grid(UTILITIES):
        test = ctx.labels(u, K, N).split("test")
        bert = ctx.pretrained("bert", u, K, N)
        for mu in (None, *ctx.grid(MU_DB)):
            r = pool(ctx.evaluate(u, test, *bert, name="bert", references=REFS, csi_error_db=mu))
            r["ubert"] = pool(ctx.evaluate(u, test, *ubert, ubert=True, name="ubert", references=(), csi_error_db=mu))[
                "ubert"
            ]
            res[(u, mu)] = r
            level = "perfect" if mu is None else f"{mu:g}"
            rows.append([u.upper(), level, r["bert"], r["ubert"]] + [r[k] for k in REFS])

    def plot(path):
        import matplotlib.pyplot as plt

        us = [u for u in UTILITIES if (u, None) in res]
        fig, axes = plt.subplots(1, len(us), figsize=(5 * len(us), 3.6), squeeze=False)
        for ax, u in zip(axes[0], us, strict=True):
            mus = [m for (uu, m) in res if uu == u and m is not None]
            for col, style in (("bert", "o-"), ("ubert", "s-"), ("rzf", "k--"), ("rzf_bal", "k-."), ("wmmse", "k:")):
                ax.plot(mus, [res[(u, m)][col] for m in mus], style, label=col.upper())
            ax.set_xlabel("CSI error level mu [dB]")
            ax.set_ylabel("performance, eq. 31 [%]")
            ax.set_title(u.upper())
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)

    raw = [{"utility": u, "mu_db": mu, **r} for (u, mu), r in res.items()]
    header = ["utility", "mu [dB]", "BERT %", "UBERT %", *REF_HEADER]
    return Report("Fig. 4: performance under CSI error at (6, 12) (eq. 31)", header, rows, raw, plot=plot)


def main(argv=None):
    return run_experiment("fig4_csi_error", __doc__, body, argv)


if __name__ == "__main__":
    main()
