"""The fine-tuning loop: BERTAdam with weight decay, warm-up then linear decay, seeded batch order.

As GluonNLP 0.10's scripts/bert fine-tunes (and the companion code, alexa/bort finetune_bort.py):
no weight decay on biases and layer-norm parameters. `batch_size` counts encoded rows, so a step
takes batch_size / (rows per instance) instances -- four RACE questions of four options each --
and a passage task costs about what any other task does per step.

Devices (bort.device): the model's contexts share every batch, each taking a shard of its
instances; a shard's loss is weighted by its share (every shape's loss is a mean over its
instances, bort.shapes), so the gradients the Trainer sums are the batch's gradient.

Checkpoints (bort.checkpoint): with a checkpoint folder, every epoch ends by saving the weights,
the Trainer states, the epoch and step reached, the RNG states and the loss history, with a
fingerprint of the settings, the training set and the starting weights. A run that finds a
checkpoint with its fingerprint resumes after that epoch: the batch order is replayed from the
seed, and the frozen part's cache is rebuilt in the order the first epoch built it. MXNet 1.9
cannot save its own RNG state, so every epoch starts by reseeding it from (seed, epoch): dropout
masks are then a function of the epoch, and the final weights of a resumed run equal an
uninterrupted run's bit for bit, dropout included.
"""
from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Callable, Iterator, List, Optional, Sequence

import numpy as np

from bort import checkpoint, device
from bort import distillation as kd
from bort.schedule import warmup_linear

log = logging.getLogger(__name__)


def fit(model, train: Sequence[dict], progress=None, epochs: Optional[int] = None,
        checkpoint_dir=None, lr: Optional[float] = None,
        schedule: Optional[Callable[[int, int], float]] = None, until: Optional[int] = None) -> List[float]:
    """Train `model` (a bort.finetune.model.TaskModel) for `epochs` (default: its config's) on the
    trainable instances of `train`; returns the mean loss of each epoch. Called again on the same
    model it continues from the current weights (Agora's rounds), re-seeded. `progress` is a tqdm
    bar (its total becomes this run's batches; a resumed run starts it where it stopped) or a
    callable taking a batch count; `checkpoint_dir` turns on per-epoch checkpoints. `lr` replaces
    the config's peak rate and `schedule(step, total)` the warm-up-then-decay factor (bort.agora's
    rounds: one decay over all rounds, bort.agora.decay). `until` stops after that many epochs of
    the `epochs`-long schedule (a search candidate's rung, bort.finetune.runs): with a checkpoint,
    a later fit of all `epochs` resumes there as if it had never stopped."""
    import gluonnlp as nlp
    cfg = model.cfg
    epochs = epochs or cfg.epochs
    peak = cfg.lr if lr is None else lr
    kd.seed_everything(model.seed)
    train = [i for i in train if model.shape.trainable(i)]
    per_step, steps_per_epoch = plan(model, train)
    total = steps_per_epoch * epochs
    for p in model.net.collect_params().values():
        if p.name.endswith(("beta", "gamma", "bias")):
            p.wd_mult = 0.0
    trainer = device.trainer(model.net.collect_params(), nlp.optimizer.BERTAdam(
        learning_rate=peak, wd=cfg.weight_decay), model.ctx)
    rng = np.random.RandomState(model.seed)
    start, step, history = 0, 0, []
    config_id = None
    if checkpoint_dir is not None:
        config_id = fingerprint(model, train, epochs=epochs, **({} if lr is None else {"lr": lr}))
        start, step, history = resume(checkpoint_dir, model, trainer, config_id)
        if start:
            warm_cache(model, train)
            for _ in range(start):
                rng.permutation(len(train))
    bar = Progress(progress, total, step)
    for epoch in range(start, min(epochs, until or epochs)):
        bar.epoch(epoch, epochs)
        reseed(model.seed, epoch)
        running = []
        for batch in batches(train, rng, per_step, steps_per_epoch):
            trainer.set_learning_rate(peak * schedule(step, total) if schedule else
                                      warmup_linear(peak, step, total, cfg.warmup_fraction))
            running.append(train_step(model, batch, trainer))
            step += 1
            bar.update(1)
        history.append(float(np.mean(running)) if running else 0.0)
        if checkpoint_dir is not None:
            checkpoint.save(checkpoint_dir, {"model": model.net}, trainer,
                            {"epoch": epoch + 1, "step": step, "history": history, "config": config_id},
                            trained_only=True)
    return history


def plan(model, train: Sequence[dict]):
    """(instances per step, steps per epoch): `batch_size` encoded rows per step on average."""
    rows = float(np.mean([len(model.shape.rows(i)) for i in train])) if train else 1.0
    per_step = max(1, int(round(model.cfg.batch_size / rows)))
    return per_step, max(1, int(np.ceil(len(train) / per_step)))


def batches(train: Sequence[dict], rng: np.random.RandomState, per_step: int, steps: int) -> Iterator[list]:
    """One epoch's batches: a fresh permutation of `train` from `rng`, cut into steps."""
    order = rng.permutation(len(train))
    for b in range(steps):
        batch = [train[j] for j in order[b * per_step:(b + 1) * per_step]]
        if batch:
            yield batch


def train_step(model, batch: list, trainer) -> float:
    """One update on `batch` across the model's contexts; returns the batch's loss."""
    import mxnet as mx
    losses = []
    for ctx, part, share in device.split(batch, model.ctx):
        with ctx, mx.autograd.record():
            losses.append(device.weighted(model.loss(part, cache=True), share))
    device.backward(losses, trainer)
    trainer.step(1, ignore_stale_grad=True)
    return float(sum(loss.asscalar() for loss in losses))


def warm_cache(model, train: Sequence[dict]) -> None:
    """Rebuild the frozen part's cache (bort.finetune.frozen) as a fit on `train` builds it in
    its first epoch: the same batches, shards and contexts, in the same order -- so a resumed or
    replayed run reads the very states the uninterrupted one cached."""
    if model.frozen is None:
        return
    train = [i for i in train if model.shape.trainable(i)]
    per_step, steps = plan(model, train)
    for batch in batches(train, np.random.RandomState(model.seed), per_step, steps):
        for ctx, part, _ in device.split(batch, model.ctx):         # the parts train_step computes
            with ctx:
                rows, keys, _ = model.rows(part)
                model.frozen.states(rows, keys, cache=True)


def fingerprint(model, train: Sequence[dict], **more) -> str:
    """What a checkpoint must have been made from to be resumed: the settings (and `more`), the
    task, the training set (size and content), the weights the run starts from, and the contexts
    and precision it trains with."""
    return checkpoint.fingerprint({"cfg": asdict(model.cfg), "seed": model.seed, "task": model.task.name,
                                   "train_size": len(train),
                                   "train": checkpoint.digest(list(train)),
                                   "weights": checkpoint.weights_digest(model.net._collect_params_with_prefix()),
                                   "device": device.label(model.ctx), "amp": device.mixed_precision_on(model.ctx),
                                   **more})


def resume(folder, model, trainer, config_id: str):
    """(epochs done, steps done, loss history) from the checkpoint in `folder` when it was made
    by this run's settings; (0, 0, []) otherwise."""
    state = checkpoint.load_state(folder)
    if state is None:
        return 0, 0, []
    if state.get("config") != config_id:
        log.info("checkpoint %s was made by other settings, data or weights; starting from epoch 0", folder)
        return 0, 0, []
    checkpoint.restore(folder, {"model": model.net}, trainer, state, ctx=model.ctx, trained_only=True)
    log.info("resuming from checkpoint %s after epoch %d", folder, state["epoch"])
    return state["epoch"], state["step"], list(state["history"])


def reseed(seed: int, epoch: int) -> None:
    """MXNet's RNG (dropout) at the start of an epoch: MXNet 1.9 cannot save its state, so each
    epoch draws from (seed, epoch) -- what a resumed run can restore exactly."""
    import mxnet as mx
    mx.random.seed(seed * 1_000_003 + epoch)


class Progress:
    """A tqdm bar set to a run's batches (its postfix the epoch), or a callable per batch."""

    def __init__(self, progress, total: int, done: int):
        self.progress = progress
        self.bar = progress if hasattr(progress, "reset") else None
        if self.bar is not None:
            self.bar.reset(total=total)
            self.bar.n = self.bar.last_print_n = done
            self.bar.refresh()

    def epoch(self, epoch: int, epochs: int) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"epoch {epoch + 1}/{epochs}")

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)
        elif self.progress is not None:
            self.progress(n)

