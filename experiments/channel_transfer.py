"""From Rayleigh to 3GPP UMa (#19): how BERT and UBERT trained on i.i.d. Rayleigh channels do on TR 38.901 UMa
channels, and what fine-tuning on UMa recovers.

    python -m experiments.channel_transfer --preset cpu

At (6, 12), P in {1, 2, 3} W, total power: the Rayleigh-trained models of the other experiments (BERT per
utility, eq. 17; UBERT, eqs. 29-30; cached) are evaluated zero-shot on fresh UMa channels (Sionna, the
``sionna`` extra, gains scaled by 120 dB) against the UMa labels, then fine-tuned there with the budget of
Table V: BERT without labels (eq. 18) on ``finetune_samples`` UMa channels, nothing re-initialised (same N),
UBERT with as many labelled UMa samples per task (Sec. V-C2). Beside them the models trained on UMa from the
start (:mod:`experiments.channel_scenarios`) and the references (MRT, ZF, RZF, RZF_BAL, WMMSE) on the same
channels. ``--preset smoke`` uses the ``pathloss`` source instead (no Sionna needed; the code path is the same).
"""

from __future__ import annotations

from experiments.common import REF_HEADER, REFS, Context, Report, pool, run_experiment

SYSTEM = (6, 12)
UTILITIES = ("sr", "mr", "ee")
TARGET = {"smoke": "pathloss"}  # every other preset: "sionna-uma"


def body(ctx: Context) -> Report:
    K, N = SYSTEM
    target = ctx.variant(channel=TARGET.get(ctx.preset, "sionna-uma"))
    ubert0 = ctx.pretrained_ubert(K, N)
    ubert_ft = target.finetune_ubert(ubert0, f"{K}x{N}_rayleigh", K, N)
    ubert_native = target.pretrained_ubert(K, N)
    rows, raw = [], []
    for u in ctx.grid(UTILITIES):
        test = target.labels(u, K, N, test=True)
        bert0 = ctx.pretrained("bert", u, K, N)
        models = {
            "BERT zero-shot": (bert0, False),
            "BERT fine-tuned": (target.finetune_bert(bert0, f"{u}_{K}x{N}_rayleigh", u, K, N), False),
            "BERT trained on target": (target.pretrained("bert", u, K, N), False),
            "UBERT zero-shot": (ubert0, True),
            "UBERT fine-tuned": (ubert_ft, True),
            "UBERT trained on target": (ubert_native, True),
        }
        r = pool(target.evaluate(u, test, references=REFS))
        for name, (m, is_ubert) in models.items():
            r[name] = pool(target.evaluate(u, test, *m, ubert=is_ubert, name=name, references=()))[name]
        rows.append([u.upper(), *(r[name] for name in models), *(r[k] for k in REFS)])
        raw.append({"utility": u, "target": target.channel, **r})
    header = ["utility", *(f"{name} %" for name in models), *REF_HEADER]
    notes = (
        f"(K, N) = {SYSTEM}, total power, P = 1, 2, 3 W pooled; eq. 31 on fresh {target.channel} channels against "
        f"their labels. 'zero-shot': trained on i.i.d. Rayleigh only."
    )
    return Report(f"Rayleigh -> {target.channel} transfer and fine-tuning (#19)", header, rows, raw, notes)


def main(argv=None):
    return run_experiment("channel_transfer", __doc__, body, argv)


if __name__ == "__main__":
    main()
