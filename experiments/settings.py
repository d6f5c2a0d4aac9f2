"""What the experiment presets spend (:class:`Budget`) and the references every table carries."""

from __future__ import annotations

import dataclasses

from jaxbeam.jobs.runs import budget_record
from jaxbeam.models.lora import LoRAConfig

REFS = ("rzf", "rzf_bal", "wmmse")
"""The references beside every model column: RZF (``jb.rzf``), RZF directions with max-min powers
(RZF_BAL, ``jb.maxmin_power``: the closed-form bar on MR) and WMMSE."""

REF_HEADER = [f"{k.upper()} %" for k in REFS]

POWERS = (1.0, 2.0, 3.0)

ADAPTERS = {"LoRA": LoRAConfig(rank=8), "MoE-LoRA": LoRAConfig(rank=8, experts=4)}
"""The adapter columns of Tables IV, V and Fig. 5 (#18; papers 003-004): rank 8 on the encoder's attention
projections, MoE-LoRA with 4 experts gated by the utility's task id; base encoder frozen, the N-dependent
embedding and output layer trained as in full fine-tuning."""

KINDS = ("mlp", "cnn", "gcn", "gat", "gpt", "bert")  # single-task models of Fig. 3 (UBERT apart)


@dataclasses.dataclass(frozen=True)
class Budget:
    """How much data and training an experiment preset spends.

    Attributes:
      model_preset: the :mod:`jaxbeam.configs` preset for model size and learning rate.
      samples_per_power: labelled pre-training samples per power level (split 8:1:1).
      test_samples_per_power: labelled samples per power level of a test-only set (K*, fine-tune systems).
      minutes: a clock budget per model [min] (epochs sized by a throughput probe, machine-dependent
        results); None = ``steps``. Only set when asked (``--minutes``).
      epochs: epochs per model when ``steps`` and ``minutes`` are None.
      finetune_samples: samples of a fine-tuning set (paper: 10,000 unlabeled).
      finetune_epochs: fine-tuning epochs (paper: 10).
      finetune_lr: fine-tuning learning rate (paper: 2e-5).
      steps: training steps per single-task model (UBERT: three times as many); None = ``epochs``.
    """

    model_preset: str
    samples_per_power: int
    test_samples_per_power: int
    minutes: float | None
    epochs: int
    finetune_samples: int
    finetune_epochs: int
    finetune_lr: float
    steps: int | None = None

    def train_budget(self, factor: int = 1) -> dict:
        """The budget of one model (:func:`jaxbeam.jobs.runs.budget_record`), ``factor`` models' worth (UBERT: 3)."""
        if self.minutes is not None:
            return budget_record(minutes=self.minutes * factor)
        if self.steps is not None:
            return budget_record(steps=self.steps * factor)
        return budget_record(epochs=self.epochs)


BUDGETS = {
    "smoke": Budget("smoke", 40, 16, None, 1, 48, 1, 1e-3),
    # cpu: 5,000 steps per model, ~1.5 min for BERT at ~55 steps/s on a 2-core CPU (the former clock budget).
    # cpu fine-tuning: 40 epochs at the cpu pre-training rate. BERT re-initialises its embedding and output layer
    # at a new N; 10 epochs at 2e-4 (~8 s) left it far from converged: (6, 12) -> (8, 15) SR 42.0 % against
    # 71.8 % with 40 epochs at 1e-3 (EE 63.1 / 82.6 %); UBERT is unchanged by it (MR 96.9 / 97.2 %).
    "cpu": Budget("cpu", 3000, 300, None, 40, 2000, 40, 1e-3, steps=5000),
    "paper": Budget("paper", 80_000, 10_000, None, 100, 10_000, 10, 2e-5),
}
