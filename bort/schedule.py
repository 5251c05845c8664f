"""The learning-rate schedule that pretraining and fine-tuning share.

Linear warm-up over the first `warmup_fraction` of the steps, then linear decay to zero: BERT's
schedule (GluonNLP 0.10 scripts/bert), and the companion code's (alexa/bort
run_pretraining_distillation_hvd.py, finetune_bort.py).
"""
from __future__ import annotations


def warmup_linear(lr: float, step: int, total: int, warmup_fraction: float) -> float:
    """The learning rate at `step` (0-based) of `total` steps peaking at `lr`."""
    warm = max(1, int(warmup_fraction * total))
    if step < warm:
        return lr * (step + 1) / warm
    return lr * max(0.0, (total - step) / max(1, total - warm))
