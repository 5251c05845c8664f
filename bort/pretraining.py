"""Pretraining the extracted architecture by knowledge distillation: resumable, optionally Horovod.

de Wynter & Perry (arXiv 2010.10499) pretrain Bort by distilling RoBERTa-large into it (companion
code: alexa/bort run_pretraining_distillation_hvd.py). The student ⟨D, A, H, I⟩ chosen by
extraction is trained on masked-language-model inputs built from the corpus (15% masking, the
teacher's vocabulary). Two losses:

- `hidden`: MSE between the teacher's final hidden states (and, with `intermediate`, the states
  of the teacher layers matched to each student layer) and the student's, through learned
  projections -- what the embedded MiniLM teacher, which has no MLM head, can teach.
- `mlm_kl`: the companion code's mix at the masked positions, for a teacher with an MLM head (a
  converted checkpoint with `cls.predictions.*`, or a GluonNLP zoo BERT/RoBERTa at paper scale).
  alexa/bort utils/pretraining_distillation_utils.py `forward` (losses from
  `get_teacher_model_loss`, weights from run_pretraining_distillation.sh: `--mlm_weight 0.1
  --teacher_ce_weight 0.5 --distillation_temperature 2.0`). With student and teacher logits s, t
  at masked position m, mask weights w_m, N = sum w_m, V the vocabulary size, T the temperature,
  p = softmax(s/T), q = softmax(t/T):

      mlm_ce      = sum_m w_m (-log softmax(s)[label_m]) / N                   (SoftmaxCELoss)
      teacher_ce  = T² sum_m w_m (1/V) sum_v q_v (log(q_v + 1e-12) - log_softmax(p)_v) / N
      teacher_mse = T² sum_m w_m (1/V) sum_v ½ (p_v - q_v)² / N                  (L2Loss; logged only)
      loss        = mlm_weight · mlm_ce + kd_weight · teacher_ce

  teacher_ce is `KLDivLoss(from_logits=False)(p, q)` exactly as the companion calls it: that loss
  applies log_softmax to its input, which is already the distribution p (a softmax of
  probabilities), and MXNet 1.5 -- the companion's pinned version -- averaged it over the
  vocabulary (MXNet >= 1.8 sums: apache/mxnet PR 18423). This is `kd_form: companion`, the
  default. `kd_form: kl` is the textbook term instead, T² sum_m w_m KL(q || softmax(s/T)) / N
  summed over the vocabulary (Hinton et al.), which pulls far harder towards the teacher.

Masking is drawn once per chunk from the seed (static masking, as BERT's original data
pipeline), so the `hidden` targets are computed once; batches are drawn from (seed, step), so a
resumed run sees exactly the batches an uninterrupted one would. Every `checkpoint_every` steps
the student, projections, optimizer states, RNG state and loss history go to a checkpoint
(bort.checkpoint); a restarted run continues from it. Under Horovod each rank takes its shard
of every batch, `hvd.DistributedTrainer` averages gradients, and rank 0 alone checkpoints
(the communicators, Horovod or one process: bort.ranks).

Devices (params.yaml `device`, bort.device): in one process the student and its projections
train data-parallel over the contexts -- each takes a contiguous shard of every batch, one Trainer
sums the gradients -- and each shard's loss is weighted by its share of what the batch loss
averages over (`shard_weights`: chunks for `hidden`, masked positions for `mlm_kl`), so losses
and updates equal one context's to float rounding. The teacher's targets and every held-out loss
are computed on the first context (for `mlm_kl` the teacher also runs beside each shard). A
Horovod rank uses one context: `device` must name one with `distributed: horovod`, and ranks
train in fp32 (mixed precision is the in-process GPU path only, pipeline/pretrain.py).
"""
from __future__ import annotations

import hashlib
import logging
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Literal, Optional

import numpy as np

from bort import checkpoint, device, distillation as kd
from bort.errors import BortError
from bort.params import Section, positive
from bort.ranks import Horovod, Single
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
    task_texts: bool = False          # also distil on the prepared tasks' unlabelled training texts
    heldout_chunks: int = 64
    seed: int = 0
    mlm_weight: float = 0.1           # mlm_kl only: student MLM cross-entropy (companion --mlm_weight)
    kd_weight: float = 0.5            # mlm_kl only: teacher term (companion --teacher_ce_weight)
    temperature: float = 2.0          # mlm_kl only: companion --distillation_temperature
    kd_form: Literal["companion", "kl"] = "companion"   # mlm_kl only: the teacher term (module docstring)
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
    """Hidden states of the given teacher layers (-1 = final) for every chunk (on its first context)."""
    import mxnet as mx
    outs: List[List[np.ndarray]] = [[] for _ in layers]
    ctx = device.where(teacher)[0]
    for s in range(0, len(ids), batch_size):
        batch = mx.nd.array(ids[s:s + batch_size], ctx=ctx)
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
    """The student with its projections (one per distilled layer) and the loss it trains on, on
    the contexts `ctx` (bort.device; default cpu(0))."""

    def __init__(self, arch, teacher_arch, teacher_arrays, cfg: PretrainConfig, ctx=None):
        self.cfg = cfg
        self.arch = arch
        kd.seed_everything(cfg.seed)
        self.model = kd.build_student(arch, teacher_arrays, cfg.init, decoder=cfg.loss == "mlm_kl", ctx=ctx,
                                      teacher_heads=teacher_arch.num_heads)
        self.ctxs = device.where(self.model)
        mapping = kd.layer_map(arch.depth, teacher_arch.depth)
        self.student_layers = list(range(arch.depth)) if cfg.intermediate else [arch.depth - 1]
        self.teacher_layers = [mapping[k] for k in self.student_layers]
        self.projections = [kd.build_projection(arch.hidden_size, teacher_arch.hidden_size, ctx=ctx)
                            for _ in self.student_layers]

    def fit_readouts(self, data: "Data") -> None:
        """Least-squares projections for the hidden loss before the first step (kd.fit_projection)."""
        if self.cfg.loss != "hidden":
            return
        for k, (layer, proj) in enumerate(zip(self.student_layers, self.projections)):
            with self.ctxs[0]:
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
        """The `mlm_kl` training loss (module docstring)."""
        return self.mlm_kl_terms(teacher, ids, original, chosen)["loss"]

    def mlm_kl_terms(self, teacher, ids, original, chosen) -> Dict[str, object]:
        """loss, mlm_ce, teacher_ce, teacher_mse (NDArrays) at the masked positions of a batch, on
        the current context (the teacher must be there too)."""
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
        return mlm_kl_terms(student_scores, teacher_scores, mx.nd.array(labels), mx.nd.array(weights), self.cfg)


def mlm_kl_terms(student_scores, teacher_scores, labels, weights, cfg: PretrainConfig) -> Dict[str, object]:
    """The companion code's loss terms from MLM logits (batch, masked, V); see the module docstring."""
    import mxnet as mx
    nd, t = mx.nd, cfg.temperature
    count = weights.sum() + 1e-8
    mlm_ce = (-nd.pick(nd.log_softmax(student_scores, axis=-1), labels, axis=-1) * weights).sum() / count
    p = nd.softmax(student_scores / t, axis=-1)
    q = nd.softmax(teacher_scores / t, axis=-1)
    log_q = nd.log(q + 1e-12)
    if cfg.kd_form == "companion":
        per_position = (q * (log_q - nd.log_softmax(p, axis=-1))).mean(axis=-1)
    else:
        per_position = (q * (log_q - nd.log_softmax(student_scores / t, axis=-1))).sum(axis=-1)
    teacher_ce = t * t * (per_position * weights).sum() / count
    with mx.autograd.pause():
        teacher_mse = t * t * ((0.5 * (p.detach() - q) ** 2).mean(axis=-1) * weights).sum() / count
    return {"loss": cfg.mlm_weight * mlm_ce + cfg.kd_weight * teacher_ce,
            "mlm_ce": mlm_ce, "teacher_ce": teacher_ce, "teacher_mse": teacher_mse}


#: the mlm_kl terms each training step also records (the loss curve's extra columns)
LOGGED_TERMS = ("mlm_ce", "teacher_ce", "teacher_mse")


def heldout_loss(student: Student, data: Data, scales, teacher=None, batch_size: int = 64) -> float:
    """The mean loss over `data`, on the student's first context."""
    import mxnet as mx
    total, count = 0.0, 0
    with student.ctxs[0]:
        for s in range(0, len(data.ids), batch_size):
            sl = slice(s, s + batch_size)
            if student.cfg.loss == "hidden":
                loss = student.hidden_loss(mx.nd.array(data.ids[sl]), [mx.nd.array(t[sl]) for t in data.targets],
                                           scales)
            else:
                loss = student.mlm_kl_loss(teacher, data.ids[sl], data.original[sl], data.chosen[sl])
            n = len(data.ids[sl])
            total += float(loss.asscalar()) * n
            count += n
    return total / max(1, count)


def shard_weights(cfg: PretrainConfig, chosen: np.ndarray, parts: List[np.ndarray]) -> List[float]:
    """Each shard's weight in the batch loss: its share of the chunks for `hidden` (a mean over
    chunks of seq_len positions each), of the masked positions for `mlm_kl` (a mean over them)."""
    if cfg.loss == "hidden":
        return device.weights(parts)
    counts = [int(chosen[part].sum()) if len(part) else 0 for part in parts]
    return [c / sum(counts) if sum(counts) else 0.0 for c in counts]


def rank_contexts(cfg: PretrainConfig, ctxs) -> list:
    """The contexts this process trains on. Horovod runs one process per context: on GPUs rank r
    of a machine takes the listed GPU local_rank (mod their number), as GluonNLP's and the companion
    code's Horovod scripts take gpu(local_rank); on CPU every rank takes the one CPU context."""
    if cfg.distributed != "horovod" or not device.uses_gpu(ctxs):
        check_contexts(cfg, ctxs)
        return list(ctxs)
    from bort.ranks import Horovod
    return [ctxs[Horovod().hvd.local_rank() % len(ctxs)]]


def check_contexts(cfg: PretrainConfig, ctxs) -> None:
    """Horovod on CPU runs one process per context: several CPU contexts in one process are the other path."""
    if cfg.distributed == "horovod" and len(ctxs) > 1:
        raise BortError(f"params.yaml: key device: {len(ctxs)} contexts ({device.label(ctxs)}) with "
                        "pretrain.distributed 'horovod', which runs one context per rank; expected one context "
                        "(cpu, or e.g. [gpu(0)]), or pretrain.distributed none to train data-parallel on them")


def pretrain(teacher, teacher_arch, vocab, student_arch, train_docs, held_docs, cfg: PretrainConfig,
             ckpt_dir: Path, progress: bool = True, stop_after: Optional[int] = None, probe_steps=(), ctx=None):
    """Run (or resume) distillation on the contexts `ctx` (bort.device; default cpu(0)); returns
    (student, metrics, history, throughput, (train, held)). The teacher is placed where it runs:
    the first context, or every context for `mlm_kl`."""
    import mxnet as mx
    from mxnet import autograd
    from tqdm import tqdm

    if cfg.loss == "mlm_kl" and getattr(teacher, "decoder", None) is None:
        raise BortError("params.yaml: pretrain.loss is 'mlm_kl' but the teacher has no MLM head; expected "
                        "loss 'hidden' (the embedded MiniLM has none), or a teacher checkpoint with cls.predictions.*")
    ctxs = list(ctx or [mx.cpu(0)])
    check_contexts(cfg, ctxs)
    comm = Horovod() if cfg.distributed == "horovod" else Single()
    device.place(teacher, ctxs if cfg.loss == "mlm_kl" else ctxs[:1])
    teacher_arrays = kd.param_arrays(teacher)
    student = Student(student_arch, teacher_arch, teacher_arrays, cfg, ctx=ctxs)
    mapping = kd.layer_map(student_arch.depth, teacher_arch.depth)
    layers = [mapping[k] for k in student.student_layers]
    train = make_data(teacher, vocab, train_docs, cfg, cfg.train_chunks, layers, cfg.seed)
    held = make_data(teacher, vocab, held_docs, cfg, cfg.heldout_chunks, layers, cfg.seed + 1)
    scales = [kd.target_scale(t) for t in train.targets] or [1.0]
    student.fit_readouts(train)
    initial_loss = heldout_loss(student, held, scales, teacher)
    comm.broadcast(student.params())
    trainer = comm.trainer(student.params(), cfg.lr, ctxs)
    config_id = cfg.fingerprint(arch=list(student_arch.tuple), teacher=list(teacher_arch.tuple), ranks=comm.size,
                                start=checkpoint.weights_digest({f"{k}.{n}": p for k, block in student.blocks().items()
                                                                 for n, p in block._collect_params_with_prefix().items()}),
                                data=hashlib.sha256(np.ascontiguousarray(train.ids).tobytes()).hexdigest())
    start, history = 0, []
    state = checkpoint.load_state(ckpt_dir)
    if state is not None and state.get("config") == config_id:
        checkpoint.restore(ckpt_dir, student.blocks(), trainer, state, ctx=ctxs)
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
        losses, terms, shares = [], [], []
        for ctx_k, part, share in device.split(index, ctxs, lambda parts: shard_weights(cfg, train.chosen, parts)):
            part = np.asarray(part)
            shares.append(share)
            with ctx_k, autograd.record():
                if cfg.loss == "hidden":
                    loss = student.hidden_loss(mx.nd.array(train.ids[part]),
                                               [mx.nd.array(t[part]) for t in train.targets], scales)
                else:
                    terms.append(student.mlm_kl_terms(teacher, train.ids[part], train.original[part],
                                                      train.chosen[part]))
                    loss = terms[-1].pop("loss")
                losses.append(device.weighted(loss, share))
        device.backward(losses, trainer)
        trainer.step(1, ignore_stale_grad=True)
        value = float(sum(loss.asscalar() for loss in losses))
        tokens += len(index) * cfg.seq_len
        record = {"step": step + 1, "train_loss": value}
        for name in terms[0] if terms else ():          # mlm_kl: the logged terms, weighted as the loss
            record[name] = float(sum(t[name].asscalar() * (1.0 if w is None else w) for t, w in zip(terms, shares)))
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
                  "steps_this_run": cfg.steps - start, "ranks": comm.size, "rank": comm.rank,
                  "device": device.label(ctxs)}
    return student, metrics, history, throughput, (train, held)


def untrained_loss(teacher, teacher_arch, student_arch, train: Data, held: Data, cfg: PretrainConfig,
                   ctx=None) -> float:
    """Held-out loss of a student built with `cfg.init` and fitted readouts, before any step, on
    the first of the contexts `ctx` (bort.device; default cpu(0))."""
    student = Student(student_arch, teacher_arch, kd.param_arrays(teacher), cfg, ctx=list(ctx)[:1] if ctx else None)
    student.fit_readouts(train)
    return heldout_loss(student, held, [kd.target_scale(t) for t in train.targets] or [1.0], teacher)
