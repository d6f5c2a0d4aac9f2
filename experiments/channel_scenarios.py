"""Beyond i.i.d. Rayleigh (#19): BERT and UBERT trained on path-loss and 3GPP UMa channels, under the total
and the per-antenna power constraint, beside MRT, ZF, RZF, RZF_BAL and WMMSE.

    python -m experiments.channel_scenarios --preset cpu

Scenarios at (6, 12), P in {1, 2, 3} W: ``pathloss`` (users uniform in a 35-250 m annulus, exponent 3.76,
8 dB shadowing, SNR defined at the cell edge: :func:`jaxbeam.pathloss`) and ``sionna-uma`` (TR 38.901 UMa
through Sionna, one sector, the ``sionna`` extra; gains scaled by 120 dB), each with one total budget P or
``P / N`` per antenna. Per scenario everything is made as for Rayleigh (:class:`experiments.common.Context`
with ``channel`` / ``power``): labels by the scenario's solvers (WMMSE, the exact max-min optimum, SCA;
per antenna ``wmmse-antenna`` for SR and ``sca-antenna`` otherwise, the test sets by their ``-strict`` versions,
run to convergence, as the plain stop ends a few % low there), BERT pre-trained per utility (eq. 17),
UBERT on all three (eqs. 29-30); the references under the same constraint (closed forms scaled into the
per-antenna set, WMMSE's per-antenna version). Eq. 31 on fresh labelled channels, P pooled. The MT-SAO
model (paper 002; SR, total power, one P) is not in this table: it draws its own channels per training step
(``jaxbeam pretrain --model sao_lift --set channel=pathloss``) and is scored on its (K, N) grid beside RZF, ZF
and WMMSE by ``jaxbeam evaluate RUN --channel pathloss`` (README); Sionna's sources are too slow to draw per step.
"""

from __future__ import annotations

from experiments.common import Context, Report, pool, run_experiment
from jaxbeam.jobs.evaluate import REFERENCES

SYSTEM = (6, 12)
UTILITIES = ("sr", "mr", "ee")
# (channel, constraint); the smoke preset runs the first only, whose models channel_transfer's smoke run reuses
SCENARIOS = (("pathloss", "total"), ("pathloss", "antenna"), ("sionna-uma", "total"), ("sionna-uma", "antenna"))


def body(ctx: Context) -> Report:
    rows, raw = [], []
    K, N = SYSTEM
    for channel, power in ctx.grid(SCENARIOS):
        c = ctx.variant(channel=channel, power=power)
        ubert = c.pretrained_ubert(K, N)
        for u in ctx.grid(UTILITIES):
            test = c.labels(u, K, N, test=True)
            r = pool(c.evaluate(u, test, *c.pretrained("bert", u, K, N), name="bert", references=REFERENCES))
            r["ubert"] = pool(c.evaluate(u, test, *ubert, ubert=True, name="ubert", references=()))["ubert"]
            best = max(REFERENCES, key=lambda k: -1.0 if r.get(k) is None else r[k])
            rows.append(
                [channel, power, u.upper(), r["bert"], r["ubert"]]
                + ["-" if r.get(k) is None else r[k] for k in REFERENCES]
                + [best.upper()]
            )
            raw.append({"channel": channel, "power": power, "utility": u, "best_reference": best, **r})
    header = ["channel", "constraint", "utility", "BERT %", "UBERT %", *(f"{k.upper()} %" for k in REFERENCES)]
    header.append("best reference")
    notes = (
        f"(K, N) = {SYSTEM}, eq. 31 (% of the scenario's label solver), P = 1, 2, 3 W pooled; 'antenna' = P / N per "
        "antenna for the labels, the models (per-antenna GPA / projection) and the references."
    )
    return Report("Channel scenarios beyond i.i.d. Rayleigh (#19)", header, rows, raw, notes)


def main(argv=None):
    return run_experiment("channel_scenarios", __doc__, body, argv)


if __name__ == "__main__":
    main()
