"""The fine-tuning loop: BERTAdam with weight decay, warm-up then linear decay, seeded batch order.

As GluonNLP 0.10's scripts/bert fine-tunes (and the companion code, alexa/bort finetune_bort.py):
no weight decay on biases and layer-norm parameters. `batch_size` counts encoded rows, so a step
takes batch_size / (rows per instance) instances -- four RACE questions of four options each --
and a passage task costs about what any other task does per step.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np

from bort import distillation as kd
from bort.schedule import warmup_linear


def fit(model, train: Sequence[dict], progress=None, epochs: Optional[int] = None) -> List[float]:
    """Train `model` (a bort.finetune.model.TaskModel) for `epochs` (default: its config's) on the
    trainable instances of `train`; returns the mean loss of each epoch. Called again on the same
    model it continues from the current weights (Agora's rounds), re-seeded."""
    import mxnet as mx
    import gluonnlp as nlp
    cfg = model.cfg
    epochs = epochs or cfg.epochs
    kd.seed_everything(cfg.seed)
    train = [i for i in train if model.shape.trainable(i)]
    rows = float(np.mean([len(model.shape.rows(i)) for i in train])) if train else 1.0
    per_step = max(1, int(round(cfg.batch_size / rows)))
    steps_per_epoch = max(1, int(np.ceil(len(train) / per_step)))
    total = steps_per_epoch * epochs
    for p in model.net.collect_params().values():
        if p.name.endswith(("beta", "gamma", "bias")):
            p.wd_mult = 0.0
    trainer = mx.gluon.Trainer(model.net.collect_params(), nlp.optimizer.BERTAdam(
        learning_rate=cfg.lr, wd=cfg.weight_decay))
    step, history = 0, []
    rng = np.random.RandomState(cfg.seed)
    for _ in range(epochs):
        order = rng.permutation(len(train))
        running = []
        for b in range(steps_per_epoch):
            batch = [train[j] for j in order[b * per_step:(b + 1) * per_step]]
            if not batch:
                continue
            trainer.set_learning_rate(warmup_linear(cfg.lr, step, total, cfg.warmup_fraction))
            with mx.autograd.record():
                loss = model.loss(batch, cache=True)
            loss.backward()
            trainer.step(1, ignore_stale_grad=True)
            running.append(float(loss.asscalar()))
            step += 1
            if progress is not None:
                progress(1)
        history.append(float(np.mean(running)) if running else 0.0)
    return history
