"""Knowledge distillation from the teacher into a student architecture (arXiv 2010.10499: Bort is
pretrained by distillation; the companion code's loss is in bort.pretraining).

Two users share this module: extraction (bort.extraction.bert) trains every candidate for a few
steps to estimate its surrogate error, and the `pretrain` stage trains the chosen architecture
for longer. The pieces:

- `corpus_chunks`: the corpus tokenised with the teacher's vocabulary and cut into fixed-length
  sequences ([CLS] ... [SEP]); `mask_tokens` applies BERT's 15% masking (80/10/10).
- `init_from_teacher`: a student starts from the teacher's *sub-matrices*, head-aware -- the
  first D layers evenly spaced (`layer_map`), the leading H residual and I feed-forward
  coordinates, and attention head k of the student built from the teacher's head k (its first
  min(d, d_T) coordinates, d = H/A; extra coordinates keep their random init, and the queries are
  rescaled so the kept coordinates give the teacher head's scores). Plain leading-block slicing
  would cut the teacher's heads apart whenever H/A differs from the teacher's head size, so A
  would be decided by the slicing, not by the architecture (issue 15 measured 0.285 vs 0.460 on
  one candidate). For the ABnC form (input layer, D repeated blocks, output layer) this is the
  natural embedding of a sub-architecture in its source; it is our reading of "start from the
  source's weights", not the papers' recipe.
- Hidden-state distillation: MSE between the teacher's final hidden states and the student's
  through a learned projection H_student -> H_teacher (TinyBERT/MiniLM style), normalised by the
  teacher states' variance so that 1.0 means "no better than predicting the mean". The embedded
  MiniLM teacher has no MLM head, so this is the loss it can teach with.

Devices (bort.device): students and projections are built and initialised on cpu(0) -- the same
weights whatever the device -- then placed on the contexts asked for. Inference (`teacher_targets`,
`evaluate`) runs on a model's first context; `kd_steps` trains data-parallel over all the
student's contexts, each taking a contiguous shard of every batch, its loss weighted by its share
(every chunk has the same length, so the shares' sum is the batch's mean loss and the summed
gradient the batch's gradient). `run_model` and `hidden_mse` take the context the caller is in.
"""
from __future__ import annotations

import logging
import random
from typing import Dict, Iterable, List, Optional

import numpy as np

from bort import device

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    import mxnet as mx
    random.seed(seed)
    np.random.seed(seed)
    mx.random.seed(seed)


def corpus_chunks(vocab, documents: Iterable[str], seq_len: int, max_chunks: Optional[int] = None) -> np.ndarray:
    """(N, seq_len) token ids: documents tokenised, concatenated and cut, each [CLS] ... [SEP].

    Lowercased unless the vocabulary says otherwise (`vocab.lower`, set by bort.teacher.load_model
    from a cased checkpoint's tokenizer_config.json)."""
    import gluonnlp as nlp
    tokenizer = nlp.data.BERTTokenizer(vocab, lower=getattr(vocab, "lower", True))
    body = seq_len - 2
    cls, sep = vocab[vocab.cls_token], vocab[vocab.sep_token]
    stream: List[int] = []
    chunks: List[List[int]] = []
    for doc in documents:
        stream.extend(vocab[tokenizer(doc)])
        while len(stream) >= body:
            chunks.append([cls] + stream[:body] + [sep])
            stream = stream[body:]
            if max_chunks is not None and len(chunks) >= max_chunks:
                return np.asarray(chunks, dtype=np.int32)
    return np.asarray(chunks, dtype=np.int32).reshape(-1, seq_len)


def mask_tokens(ids: np.ndarray, vocab, rng: np.random.RandomState, rate: float = 0.15):
    """BERT masking: choose `rate` of the non-special tokens; 80% [MASK], 10% random, 10% kept.

    Returns (masked ids, boolean mask of the chosen positions)."""
    special = {vocab[vocab.cls_token], vocab[vocab.sep_token], vocab[vocab.padding_token]}
    candidates = ~np.isin(ids, list(special))
    chosen = (rng.random_sample(ids.shape) < rate) & candidates
    masked = ids.copy()
    roll = rng.random_sample(ids.shape)
    masked[chosen & (roll < 0.8)] = vocab[vocab.mask_token]
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    masked[swap] = rng.randint(len(special) + 100, len(vocab), size=int(swap.sum()))
    return masked, chosen


def run_model(model, ids):
    """All outputs of a BERTModel on full-length sequences (no padding); a model with an MLM
    decoder gets a dummy masked position, since GluonNLP requires one. Numpy ids go to the current
    context (`with ctx:`), an NDArray stays where it is."""
    import mxnet as mx
    ids = mx.nd.array(ids) if not isinstance(ids, mx.nd.NDArray) else ids
    args = [ids, mx.nd.zeros_like(ids), mx.nd.full((ids.shape[0],), ids.shape[1])]
    if getattr(model, "_use_decoder", False):
        args.append(mx.nd.zeros((ids.shape[0], 1)))
    return model(*args)


def forward_hidden(model, ids):
    """Final hidden states of a BERTModel for full-length sequences (no padding)."""
    return run_model(model, ids)[0]


def teacher_targets(teacher, ids: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """The teacher's final hidden states for every chunk, computed once (on its first context)
    and reused."""
    with device.where(teacher)[0]:
        return batched(lambda x: forward_hidden(teacher, x), ids, batch_size).astype(np.float32)


def param_arrays(model) -> Dict[str, np.ndarray]:
    """Every parameter as numpy, by structural name (from the first context it lives on)."""
    return {name: p.data(p.list_ctx()[0]).asnumpy() for name, p in model._collect_params_with_prefix().items()}


def layer_map(student_depth: int, teacher_depth: int) -> List[int]:
    """Teacher layer for each student layer, evenly spaced and ending at the teacher's last
    (DistilBERT's every-other-layer, generalised): the student's top layer starts as the
    teacher's top layer, so its output space is the one distillation targets."""
    return [round((k + 1) * teacher_depth / student_depth) - 1 for k in range(student_depth)]


def _teacher_name(name: str, mapping: List[int]) -> str:
    prefix = "encoder.transformer_cells."
    if name.startswith(prefix):
        layer, rest = name[len(prefix):].split(".", 1)
        return f"{prefix}{mapping[int(layer)]}.{rest}"
    return name


#: tensors whose axis is laid out by attention head (GluonNLP 0.10 DotProductSelfAttentionCell:
#: head k owns rows k·d .. (k+1)·d of the query, key and value projections; the output projection
#: `proj` reads the heads' concatenation along its input axis)
_HEAD_AXIS = {"attention_cell.proj_query.weight": 0, "attention_cell.proj_query.bias": 0,
              "attention_cell.proj_key.weight": 0, "attention_cell.proj_key.bias": 0,
              "attention_cell.proj_value.weight": 0, "attention_cell.proj_value.bias": 0, "proj.weight": 1}


def head_index(heads: int, size: int, teacher_heads: int, teacher_size: int):
    """For each of a student's `size` head-laid coordinates (`heads` heads of size/heads), the
    teacher coordinate it copies, or -1 where the student head is wider than the teacher's
    (those keep their random init). Student head k is teacher head k."""
    if heads > teacher_heads:
        raise ValueError(f"student has {heads} attention heads, more than the teacher's {teacher_heads}")
    d, d_t = size // heads, teacher_size // teacher_heads
    index = np.full(size, -1)
    for k in range(heads):
        keep = min(d, d_t)
        index[k * d:k * d + keep] = k * d_t + np.arange(keep)
    return index


def init_from_teacher(student, teacher_arrays: Dict[str, np.ndarray], heads: int, teacher_heads: int) -> None:
    """Copy into every student tensor its block of the matching teacher tensor, head-aware
    (module docstring): layers matched by `layer_map`, attention head k from the teacher's head k,
    every other axis its leading coordinates."""
    import mxnet as mx
    params = student._collect_params_with_prefix()
    depth = 1 + max(int(n.split(".")[2]) for n in params if n.startswith("encoder.transformer_cells."))
    teacher_depth = 1 + max(int(n.split(".")[2]) for n in teacher_arrays if n.startswith("encoder.transformer_cells."))
    mapping = layer_map(depth, teacher_depth)
    for name, param in params.items():
        source_name = _teacher_name(name, mapping)
        if source_name not in teacher_arrays and name.startswith("decoder."):
            continue                                  # an MLM head the teacher lacks stays random
        if source_name not in teacher_arrays:
            raise KeyError(f"teacher has no tensor {source_name!r} to initialise the student from")
        source = teacher_arrays[source_name]
        if len(source.shape) != len(param.shape) or any(n > t for n, t in zip(param.shape, source.shape)):
            raise ValueError(f"student tensor {name!r} {param.shape} is larger than the teacher's {source.shape}")
        head_axis = next((axis for suffix, axis in _HEAD_AXIS.items() if name.endswith("." + suffix)), None)
        block = param.data(param.list_ctx()[0]).asnumpy()
        index = [np.arange(n) for n in param.shape]
        if head_axis is not None:
            index[head_axis] = head_index(heads, param.shape[head_axis], teacher_heads, source.shape[head_axis])
        kept = [i >= 0 for i in index]
        values = source[np.ix_(*[np.where(k, i, 0) for k, i in zip(kept, index)])]
        if ".proj_query." in name:                    # the teacher head's scores on the kept coordinates
            d, d_t = param.shape[0] // heads, source.shape[0] // teacher_heads
            values = values * np.sqrt(d / d_t)
        mask = np.ix_(*kept)
        block[mask] = values[mask]
        param.set_data(mx.nd.array(block))


def build_student(arch, teacher_arrays: Optional[Dict[str, np.ndarray]], init: str = "teacher",
                  decoder: bool = False, ctx=None, teacher_heads: Optional[int] = None):
    """A student BERTModel of `arch`, initialised from the teacher's sub-matrices (head-aware:
    `teacher_heads` is the teacher's A) or randomly, on the contexts `ctx` (default cpu(0); built
    there, then placed)."""
    import mxnet as mx
    student = arch.build(decoder=decoder)
    student.initialize(mx.init.Normal(0.02), ctx=mx.cpu())
    forward_hidden(student, np.zeros((1, 2), np.float32))           # resolve deferred shapes
    if init == "teacher":
        if teacher_heads is None:
            raise ValueError("init 'teacher' needs teacher_heads, the teacher's attention heads")
        init_from_teacher(student, teacher_arrays, arch.num_heads, teacher_heads)
    elif init != "random":
        raise ValueError(f"init: expected 'teacher' or 'random', got {init!r}")
    return device.place(student, ctx or [mx.cpu(0)])


def build_projection(student_hidden: int, teacher_hidden: int, ctx=None):
    """Dense H_student -> H_teacher, initialised to the identity on the leading coordinates, so a
    teacher-initialised student starts where truncating the teacher would put it (on `ctx`, as
    `build_student`)."""
    import mxnet as mx
    from mxnet.gluon import nn
    proj = nn.Dense(teacher_hidden, in_units=student_hidden, flatten=False)
    proj.initialize(ctx=mx.cpu())
    eye = np.zeros((teacher_hidden, student_hidden), np.float32)
    eye[np.arange(student_hidden), np.arange(student_hidden)] = 1.0
    proj.weight.set_data(mx.nd.array(eye))
    return device.place(proj, ctx or [mx.cpu(0)])


def fit_projection(proj, features: np.ndarray, targets: np.ndarray, ridge: float = 1e-2) -> None:
    """Set the projection to the least-squares readout of the teacher states from the student's
    (ridge-regularised, with bias): the best linear map before any step is taken, so a short
    distillation run spends its steps on the encoder rather than on learning a readout. Computed
    in numpy, set on every context the projection lives on."""
    import mxnet as mx
    x = features.reshape(-1, features.shape[-1]).astype(np.float64)
    y = targets.reshape(-1, targets.shape[-1]).astype(np.float64)
    x_mean, y_mean = x.mean(0), y.mean(0)
    xc, yc = x - x_mean, y - y_mean
    gram = xc.T @ xc + ridge * len(xc) * np.eye(xc.shape[1])
    weight = np.linalg.solve(gram, xc.T @ yc)                       # (H_student, H_teacher)
    proj.weight.set_data(mx.nd.array(weight.T.astype(np.float32)))
    proj.bias.set_data(mx.nd.array((y_mean - x_mean @ weight).astype(np.float32)))


def batched(fn, ids: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """fn over batches of ids, outputs concatenated as numpy."""
    return np.concatenate([fn(ids[s:s + batch_size]).asnumpy() for s in range(0, len(ids), batch_size)])


def hidden_mse(student, proj, ids, targets, scale: float):
    """Normalised MSE between projected student states and teacher states (autograd-friendly)."""
    import mxnet as mx
    hidden = forward_hidden(student, ids)
    diff = proj(hidden) - mx.nd.array(targets)
    return (diff ** 2).mean() / scale


def target_scale(targets: np.ndarray) -> float:
    """Variance of the teacher states around their per-dimension mean: the loss of a constant."""
    flat = targets.reshape(-1, targets.shape[-1])
    return float(((flat - flat.mean(0)) ** 2).mean())


def evaluate(student, proj, ids: np.ndarray, targets: np.ndarray, scale: float, batch_size: int = 64) -> float:
    """Mean `hidden_mse` over `ids`, on the student's first context."""
    total, count = 0.0, 0
    with device.where(student)[0]:
        for s in range(0, len(ids), batch_size):
            loss = hidden_mse(student, proj, ids[s:s + batch_size], targets[s:s + batch_size], scale)
            total += float(loss.asscalar()) * len(ids[s:s + batch_size])
            count += len(ids[s:s + batch_size])
    return total / max(1, count)


def kd_steps(student, proj, ids: np.ndarray, targets: np.ndarray, scale: float, steps: int,
             batch_size: int, lr: float, seed: int, trainer=None, start_step: int = 0,
             on_step=None) -> List[float]:
    """`steps` Adam steps of hidden-state distillation on batches drawn with a seeded RNG, over
    every context the student lives on (data-parallel: module docstring).

    The batch order depends only on (seed, step), so a resumed run sees the same batches."""
    import mxnet as mx
    from mxnet import autograd
    ctxs = device.where(student)
    if trainer is None:
        params = student.collect_params()
        params.update(proj.collect_params())
        trainer = device.trainer(params, mx.optimizer.Adam(learning_rate=lr), ctxs)
    losses = []
    for step in range(start_step, start_step + steps):
        rng = np.random.RandomState(seed * 100_003 + step)
        index = rng.choice(len(ids), size=min(batch_size, len(ids)), replace=False)
        step_losses = []
        for ctx, part, share in device.split(index, ctxs):
            with ctx, autograd.record():
                loss = hidden_mse(student, proj, ids[part], targets[part], scale)
                step_losses.append(device.weighted(loss, share))
        device.backward(step_losses, trainer)
        trainer.step(1, ignore_stale_grad=True)          # the pooler takes no part in this loss
        losses.append(float(sum(loss.asscalar() for loss in step_losses)))
        if on_step is not None:
            on_step(step, losses[-1], trainer)
    return losses

