"""Pretraining the extracted architecture by knowledge distillation: resumable, optionally Horovod.

de Wynter & Perry (arXiv 2010.10499) pretrain Bort by distilling RoBERTa-large into it (companion
code: alexa/bort run_pretraining_distillation_hvd.py). The student ⟨D, A, H, I⟩ chosen by
extraction is trained on masked-language-model inputs built from the corpus (15% masking, the
teacher's vocabulary). Two losses:

- `hidden`: MSE between the teacher's final hidden states (and, with `intermediate`, the states
  of the teacher layers matched to each student layer) and the student's, through learned
  projections -- what the embedded MiniLM teacher, which has no MLM head, can teach.
- `mlm_kl`: the companion code's mix -- the student's own MLM cross-entropy plus T²·KL between
  the teacher's and the student's MLM distributions at the masked positions -- for a teacher
  with an MLM head (GluonNLP model-zoo BERT/RoBERTa at paper scale).

Masking is drawn once per chunk from the seed (static masking, as BERT's original data
pipeline), so the `hidden` targets are computed once; batches are drawn from (seed, step), so a
resumed run sees exactly the batches an uninterrupted one would. Every `checkpoint_every` steps
the student, projections, optimizer states, RNG state and loss history go to a checkpoint
(bort.checkpoint); a restarted run continues from it. Under Horovod each rank takes its shard
of every batch, `hvd.DistributedTrainer` averages gradients, and rank 0 alone checkpoints.
"""
from __future__ import annotations

import logging
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Literal, Optional

import numpy as np

from bort import checkpoint, distillation as kd
from bort.errors import BortError
from bort.params import Section, positive
from bort.schedule import warmup_linear

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PretrainConfig(Section):
    """params.yaml `pretrain` (the defaults are its values)."""
    loss: Literal["hidden", "mlm_kl"] = "hidden"
    intermediate: bool = False        # also distil each student layer from its matched teacher layer
    init: Literal["teacher", "random"] = "teacher"
    steps: int = 300
    batch_size: int = 32
    seq_len: int = 64
    lr: float = 5e-4
    warmup_fraction: float = 0.1
    mask_rate: float = 0.15
    checkpoint_every: int = 50
    train_chunks: int = 1024
    heldout_chunks: int = 64
    seed: int = 0
    mlm_weight: float = 1.0           # mlm_kl only
    kd_weight: float = 1.0            # mlm_kl only
    temperature: float = 1.0          # mlm_kl only
    distributed: Literal["none", "horovod"] = "none"   # horovod: run under `horovodrun -np N`

    def validate(self) -> None:
        positive(self, "steps", "batch_size", "seq_len", "checkpoint_every", "train_chunks", "heldout_chunks")

    def fingerprint(self, **more) -> str:
        """What a checkpoint must have been made with to resume (the launcher is not part of it:
        the number of ranks is, through `more`)."""
        return checkpoint.fingerprint({"cfg": {k: v for k, v in asdict(self).items() if k != "distributed"},
                                       **more})


def learning_rate(cfg: PretrainConfig, step: int) -> float:
    """Linear warm-up over `warmup_fraction` of the steps, then linear decay to zero."""
    return warmup_linear(cfg.lr, step, cfg.steps, cfg.warmup_fraction)


class Horovod:
    """The Horovod path, imported only when asked for (an optional install)."""

    def __init__(self):
        try:
            import horovod.mxnet as hvd
        except ImportError:
            raise BortError("params.yaml: pretrain.distributed is 'horovod' but horovod.mxnet is not "
                            "installed; expected `HOROVOD_WITH_MXNET=1 pip install horovod` and a "
                            "launch with `horovodrun -np N python pipeline/pretrain.py`") from None
        hvd.init()
        self.hvd, self.rank, self.size = hvd, hvd.rank(), hvd.size()

    def trainer(self, params, lr):
        return self.hvd.DistributedTrainer(params, "adam", {"learning_rate": lr})

    def broadcast(self, params):
        self.hvd.broadcast_parameters(params, root_rank=0)


class Single:
    rank, size = 0, 1

    def trainer(self, params, lr):
        from mxnet import gluon
        return gluon.Trainer(params, "adam", {"learning_rate": lr})

    def broadcast(self, params):
        pass


@dataclass
class Data:
    """Masked chunks and what the teacher says about them (static masking)."""
    ids: np.ndarray            # masked inputs (N, L)
    original: np.ndarray       # unmasked ids (MLM labels)
    chosen: np.ndarray         # masked positions (N, L) bool
    targets: List[np.ndarray]  # hidden-state targets, one per matched layer (loss=hidden)


def make_data(teacher, vocab, docs, cfg: PretrainConfig, count: int, layers: List[int], seed: int) -> Data:
    original = kd.corpus_chunks(vocab, docs, cfg.seq_len, count)
    if len(original) == 0:
        raise BortError(f"corpus too small: no chunk of {cfg.seq_len} tokens")
    masked, chosen = kd.mask_tokens(original, vocab, np.random.RandomState(seed), cfg.mask_rate)
    targets = []
    if cfg.loss == "hidden":
        targets = teacher_layers(teacher, masked, layers)
    return Data(masked.astype(np.float32), original, chosen, targets)


def teacher_layers(teacher, ids: np.ndarray, layers: List[int], batch_size: int = 64) -> List[np.ndarray]:
    """Hidden states of the given teacher layers (-1 = final) for every chunk."""
    import mxnet as mx
    outs: List[List[np.ndarray]] = [[] for _ in layers]
    for s in range(0, len(ids), batch_size):
        batch = mx.nd.array(ids[s:s + batch_size])
        encodings = all_encodings(teacher, batch)
        for k, layer in enumerate(layers):
            outs[k].append(encodings[layer].asnumpy())
    return [np.concatenate(o).astype(np.float32) for o in outs]


def all_encodings(model, ids):
    """All layer outputs of a BERTModel: temporarily switch its encoder to output them."""
    encoder = model.encoder
    saved = encoder._output_all_encodings
    encoder._output_all_encodings = True
    try:
        return kd.run_model(model, ids)[0]
    finally:
        encoder._output_all_encodings = saved


class Student:
    """The student with its projections (one per distilled layer) and the loss it trains on."""

    def __init__(self, arch, teacher_arch, teacher_arrays, cfg: PretrainConfig):
        self.cfg = cfg
        self.arch = arch
        kd.seed_everything(cfg.seed)
        self.model = kd.build_student(arch, teacher_arrays, cfg.init, decoder=cfg.loss == "mlm_kl")
        mapping = kd.layer_map(arch.depth, teacher_arch.depth)
        self.student_layers = list(range(arch.depth)) if cfg.intermediate else [arch.depth - 1]
        self.teacher_layers = [mapping[k] for k in self.student_layers]
        self.projections = [kd.build_projection(arch.hidden_size, teacher_arch.hidden_size)
                            for _ in self.student_layers]

    def fit_readouts(self, data: "Data") -> None:
        """Least-squares projections for the hidden loss before the first step (kd.fit_projection)."""
        if self.cfg.loss != "hidden":
            return
        for k, (layer, proj) in enumerate(zip(self.student_layers, self.projections)):
            features = kd.batched(lambda x: self.encodings(x)[layer], data.ids)
            kd.fit_projection(proj, features, data.targets[k])

    def blocks(self) -> Dict[str, object]:
        out = {"student": self.model}
        out.update({f"proj{k}": p for k, p in enumerate(self.projections)})
        return out

    def params(self):
        params = self.model.collect_params()
        for p in self.projections:
            params.update(p.collect_params())
        return params

    def encodings(self, ids):
        return all_encodings(self.model, ids)

    def hidden_loss(self, ids, targets: List, scales: List[float]):
        states = self.encodings(ids)
        total = 0
        for k, (layer, proj) in enumerate(zip(self.student_layers, self.projections)):
            diff = proj(states[layer]) - targets[k]
            total = total + (diff ** 2).mean() / scales[k]
        return total / len(self.projections)

    def mlm_kl_loss(self, teacher, ids, original, chosen):
        """Student MLM cross-entropy + T²·KL(teacher ‖ student) at the masked positions."""
        import mxnet as mx
        rows, cols = np.nonzero(chosen)
        width = max(1, int(chosen.sum(1).max()))
        positions = np.zeros((len(ids), width), np.float32)
        weights = np.zeros((len(ids), width), np.float32)
        labels = np.zeros((len(ids), width), np.float32)
        fill = np.zeros(len(ids), int)
        for r, c in zip(rows, cols):
            positions[r, fill[r]], weights[r, fill[r]], labels[r, fill[r]] = c, 1.0, original[r, c]
            fill[r] += 1
        x = mx.nd.array(ids)
        types, lengths = mx.nd.zeros_like(x), mx.nd.full((len(ids),), ids.shape[1])
        pos = mx.nd.array(positions)
        student_scores = self.model(x, types, lengths, pos)[-1]
        with mx.autograd.pause():
            teacher_scores = teacher(x, types, lengths, pos)[-1]
        t = self.cfg.temperature
        w = mx.nd.array(weights)
        log_p = mx.nd.log_softmax(student_scores, axis=-1)
        ce = -mx.nd.pick(log_p, mx.nd.array(labels), axis=-1)
        teacher_p = mx.nd.softmax(teacher_scores / t, axis=-1)
        kl = (teacher_p * (mx.nd.log(teacher_p + 1e-12) - mx.nd.log_softmax(student_scores / t, axis=-1))).sum(-1)
        denominator = w.sum() + 1e-6
        return (self.cfg.mlm_weight * (ce * w).sum() + self.cfg.kd_weight * t * t * (kl * w).sum()) / denominator


def heldout_loss(student: Student, data: Data, scales, teacher=None, batch_size: int = 64) -> float:
    import mxnet as mx
    total, count = 0.0, 0
    for s in range(0, len(data.ids), batch_size):
        sl = slice(s, s + batch_size)
        if student.cfg.loss == "hidden":
            loss = student.hidden_loss(mx.nd.array(data.ids[sl]), [mx.nd.array(t[sl]) for t in data.targets], scales)
        else:
            loss = student.mlm_kl_loss(teacher, data.ids[sl], data.original[sl], data.chosen[sl])
        n = len(data.ids[sl])
        total += float(loss.asscalar()) * n
        count += n
    return total / max(1, count)


def pretrain(teacher, teacher_arch, vocab, student_arch, train_docs, held_docs, cfg: PretrainConfig,
             ckpt_dir: Path, progress: bool = True, stop_after: Optional[int] = None, probe_steps=()):
    """Run (or resume) distillation; returns (student, metrics, history, throughput, (train, held))."""
    import mxnet as mx
    from mxnet import autograd
    from tqdm import tqdm

    if cfg.loss == "mlm_kl" and getattr(teacher, "decoder", None) is None:
        raise BortError("params.yaml: pretrain.loss is 'mlm_kl' but the teacher has no MLM head; "
                        "expected loss 'hidden' for the embedded MiniLM teacher")
    comm = Horovod() if cfg.distributed == "horovod" else Single()
    teacher_arrays = kd.param_arrays(teacher)
    student = Student(student_arch, teacher_arch, teacher_arrays, cfg)
    mapping = kd.layer_map(student_arch.depth, teacher_arch.depth)
    layers = [mapping[k] for k in student.student_layers]
    train = make_data(teacher, vocab, train_docs, cfg, cfg.train_chunks, layers, cfg.seed)
    held = make_data(teacher, vocab, held_docs, cfg, cfg.heldout_chunks, layers, cfg.seed + 1)
    scales = [kd.target_scale(t) for t in train.targets] or [1.0]
    student.fit_readouts(train)
    initial_loss = heldout_loss(student, held, scales, teacher)
    comm.broadcast(student.params())
    trainer = comm.trainer(student.params(), cfg.lr)
    config_id = cfg.fingerprint(arch=list(student_arch.tuple), teacher=list(teacher_arch.tuple), ranks=comm.size)
    start, history = 0, []
    state = checkpoint.load_state(ckpt_dir)
    if state is not None and state.get("config") == config_id:
        checkpoint.restore(ckpt_dir, student.blocks(), trainer, state)
        start, history = state["step"], state["history"]
        log.info("resuming from checkpoint %s at step %d", ckpt_dir, start)
    elif state is not None:
        log.info("checkpoint %s was made with another configuration; starting from step 0", ckpt_dir)
    per_rank = max(1, cfg.batch_size // comm.size)
    bar = tqdm(total=cfg.steps, initial=start, desc="pretrain", file=sys.stderr, disable=not progress or comm.rank)
    tokens, started = 0, time.perf_counter()
    for step in range(start, cfg.steps):
        rng = np.random.RandomState(cfg.seed * 100_003 + step)
        index = rng.choice(len(train.ids), size=min(cfg.batch_size, len(train.ids)), replace=False)
        index = index[comm.rank * per_rank:(comm.rank + 1) * per_rank]          # this rank's shard
        trainer.set_learning_rate(learning_rate(cfg, step))
        with autograd.record():
            if cfg.loss == "hidden":
                loss = student.hidden_loss(mx.nd.array(train.ids[index]),
                                           [mx.nd.array(t[index]) for t in train.targets], scales)
            else:
                loss = student.mlm_kl_loss(teacher, train.ids[index], train.original[index], train.chosen[index])
        loss.backward()
        trainer.step(1, ignore_stale_grad=True)
        value = float(loss.asscalar())
        tokens += len(index) * cfg.seq_len
        record = {"step": step + 1, "train_loss": value}
        done = step + 1
        if done % cfg.checkpoint_every == 0 or done == cfg.steps or done in probe_steps:
            record["heldout_loss"] = heldout_loss(student, held, scales, teacher)
            history.append(record)
            if comm.rank == 0 and (done % cfg.checkpoint_every == 0 or done == cfg.steps):
                checkpoint.save(ckpt_dir, student.blocks(), trainer,
                                {"step": done, "history": history, "config": config_id})
        else:
            history.append(record)
        bar.update(1)
        bar.set_postfix(loss=f"{value:.4f}")
        if stop_after is not None and done >= stop_after:
            break
    bar.close()
    elapsed = time.perf_counter() - started
    final = heldout_loss(student, held, scales, teacher)
    metrics = {"heldout_loss_initial": initial_loss, "heldout_loss_final": final,
               "steps": cfg.steps, "tokens_seen": cfg.steps * cfg.batch_size * cfg.seq_len,
               "resumed_from_step": start}
    throughput = {"tokens_per_s": tokens / elapsed if tokens else None, "seconds": elapsed,
                  "steps_this_run": cfg.steps - start, "ranks": comm.size, "rank": comm.rank}
    return student, metrics, history, throughput, (train, held)


def untrained_loss(teacher, teacher_arch, student_arch, train: Data, held: Data, cfg: PretrainConfig) -> float:
    """Held-out loss of a student built with `cfg.init` and fitted readouts, before any step."""
    student = Student(student_arch, teacher_arch, kd.param_arrays(teacher), cfg)
    student.fit_readouts(train)
    return heldout_loss(student, held, [kd.target_scale(t) for t in train.targets] or [1.0], teacher)
