"""Fine-tuning one linear classifier on an encoder, for every task shape of the 23 tasks.

bort.md section 4: the companion code attaches dropout → dense+tanh → dropout → dense to the
encoder's [CLS] state and trains on the task. The task's registry entry (bort.tasks) decides
the shape, not a class per task:

- single / pair / wic / wsc / multirc: one encoded row per instance, a softmax over the labels
  (WiC is given the target word in front of the first sentence; WSC the pair "text" / "span2
  refers to span1"; MultiRC is answer-level binary, aggregated to F1a/EM by the metrics);
- regression (STS-B): one row, one output, squared error;
- choice (COPA, RACE) and record (ReCoRD): one row per option / candidate entity, one score per
  row, a softmax over the instance's rows (ReCoRD: probability mass on any gold entity).

Everything is seeded (python, numpy, mxnet, batch order), so a run is repeatable.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from bort import distillation as kd
from bort.tasks import Task

log = logging.getLogger(__name__)
OPTION_SHAPES = ("choice", "record")
SCORE_RANGE = 5.0      # STS-B: the head predicts score / 5, so targets sit where a fresh head starts


@dataclass(frozen=True)
class FinetuneConfig:
    epochs: int = 3
    batch_size: int = 16
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    dropout: float = 0.1
    max_len: int = 64
    max_len_passage: int = 128
    max_train: int = 0            # 0: all training examples
    pooling: str = "cls"          # cls: the companion code's [CLS] state; mean: mean over real tokens
    seed: int = 0


def row_texts(task: Task, inst: dict) -> List[Tuple[str, Optional[str]]]:
    """The (first, second) segments of every row an instance is encoded as."""
    if task.shape == "choice":
        context = inst["text_a"] if task.suite == "race" else f'{inst["text_a"]} what was the {inst["question"]} ?'
        question = inst["question"] if task.suite == "race" else None
        return [(context, f"{question} {c}" if question else c) for c in inst["choices"]]
    if task.shape == "record":
        return [(inst["text_a"], inst["query"].replace("@placeholder", c)) for c in inst["candidates"]]
    if task.shape == "wic":
        return [(f'{inst["fields"]["word"]} : {inst["text_a"]}', inst["text_b"])]
    return [(inst["text_a"], inst.get("text_b"))]


def gold_rows(task: Task, inst: dict) -> List[int]:
    if task.shape == "record":
        return [k for k, c in enumerate(inst["candidates"]) if c in inst.get("answers", [])]
    return [inst["label"]]


class Encoder:
    """Tokenises rows once per (text pair, length) with GluonNLP's BERT transform."""

    def __init__(self, vocab, lower: bool = True):
        import gluonnlp as nlp
        self.vocab = vocab
        self.tokenizer = nlp.data.BERTTokenizer(vocab, lower=lower)
        self._transforms = {}
        self._cache: Dict[tuple, tuple] = {}

    def __call__(self, first: str, second: Optional[str], max_len: int):
        key = (first, second, max_len)
        if key not in self._cache:
            import gluonnlp as nlp
            pair = second is not None
            tkey = (max_len, pair)
            if tkey not in self._transforms:
                self._transforms[tkey] = nlp.data.BERTSentenceTransform(self.tokenizer, max_seq_length=max_len,
                                                                         pad=False, pair=pair)
            ids, length, types = self._transforms[tkey]((first, second) if pair else (first,))
            self._cache[key] = (np.asarray(ids, np.float32), int(length), np.asarray(types, np.float32))
        return self._cache[key]


def pad_rows(rows, pad_id: int):
    width = max(r[1] for r in rows)
    ids = np.full((len(rows), width), pad_id, np.float32)
    types = np.zeros((len(rows), width), np.float32)
    lengths = np.zeros(len(rows), np.float32)
    for k, (tok, length, seg) in enumerate(rows):
        ids[k, :length], types[k, :length], lengths[k] = tok[:length], seg[:length], length
    return ids, types, lengths


def build_classifier(encoder_model, hidden: int, outputs: int, dropout: float, pooling: str = "cls"):
    """The companion code's head: dropout → dense+tanh → dropout → dense, on the [CLS] state or,
    with `pooling: mean`, on the mean of the real tokens' states -- the representation the
    embedded MiniLM checkpoint was trained to produce (its [CLS] state was never trained alone)."""
    if pooling not in ("cls", "mean"):
        from bort.errors import BortError
        raise BortError(f"params.yaml: finetune pooling: expected 'cls' or 'mean', got {pooling!r}")
    import mxnet as mx
    from mxnet.gluon import nn

    class Classifier(mx.gluon.HybridBlock):
        def __init__(self):
            super().__init__()
            with self.name_scope():
                self.encoder = encoder_model
                self.head = nn.HybridSequential()
                self.head.add(nn.Dropout(dropout), nn.Dense(hidden, activation="tanh", in_units=hidden, flatten=False),
                              nn.Dropout(dropout), nn.Dense(outputs, in_units=hidden, flatten=False))

        def hybrid_forward(self, F, ids, types, lengths):
            seq = self.encoder(ids, types, lengths)[0]
            if pooling == "mean":
                summed = F.sum(F.SequenceMask(seq, sequence_length=lengths, use_sequence_length=True, axis=1), axis=1)
                return self.head(F.broadcast_div(summed, lengths.reshape((-1, 1))))
            return self.head(F.slice_axis(seq, axis=1, begin=0, end=1).reshape((0, -1)))

    net = Classifier()
    net.head.initialize(mx.init.Xavier())
    return net


class TaskModel:
    """An encoder + head fine-tuned on one task; `predict` returns metric-ready predictions."""

    def __init__(self, task: Task, encoder_model, vocab, hidden: int, cfg: FinetuneConfig):
        self.task, self.vocab, self.cfg = task, vocab, cfg
        if task.shape == "regression" or task.shape in OPTION_SHAPES:
            outputs = 1
        elif task.shape == "multirc":
            outputs = 2
        else:
            outputs = len(task.labels)
        self.net = build_classifier(encoder_model, hidden, outputs, cfg.dropout, cfg.pooling)
        self.encode = Encoder(vocab)
        self.max_len = cfg.max_len_passage if task.suite == "race" or task.shape in ("record", "multirc") \
            or task.name in ("BoolQ",) else cfg.max_len

    def _rows(self, instances):
        rows, owner = [], []
        for k, inst in enumerate(instances):
            for first, second in row_texts(self.task, inst):
                rows.append(self.encode(first, second, self.max_len))
                owner.append(k)
        return rows, np.asarray(owner)

    def _scores(self, instances):
        import mxnet as mx
        rows, owner = self._rows(instances)
        ids, types, lengths = pad_rows(rows, self.vocab[self.vocab.padding_token])
        return self.net(mx.nd.array(ids), mx.nd.array(types), mx.nd.array(lengths)), owner

    def loss(self, instances):
        import mxnet as mx
        scores, owner = self._scores(instances)
        shape = self.task.shape
        if shape == "regression":
            target = mx.nd.array([i["label"] / SCORE_RANGE for i in instances])
            return ((scores.reshape((-1,)) - target) ** 2).mean()
        if shape in OPTION_SHAPES:
            flat = scores.reshape((-1,))
            losses = []
            start = 0
            for k, inst in enumerate(instances):
                n = int((owner == k).sum())
                group = flat[start:start + n]
                gold = gold_rows(self.task, inst)
                if gold:
                    total = mx.nd.log(mx.nd.exp(group - group.max()).sum()) + group.max()
                    picked = group.take(mx.nd.array(gold))
                    gold_lse = mx.nd.log(mx.nd.exp(picked - picked.max()).sum()) + picked.max()
                    losses.append(total - gold_lse)
                start += n
            return mx.nd.concat(*losses, dim=0).mean() if losses else (flat * 0).sum()
        target = mx.nd.array([i["label"] for i in instances])
        return -mx.nd.pick(mx.nd.log_softmax(scores, axis=-1), target, axis=-1).mean()

    def fit(self, train: Sequence[dict], progress=None, epochs: Optional[int] = None) -> List[float]:
        """Adam with linear warm-up and decay, weight decay, seeded shuffles; returns epoch losses.

        Called again on the same model it continues from the current weights (Agora's rounds)."""
        import mxnet as mx
        import gluonnlp as nlp
        cfg = self.cfg
        epochs = epochs or cfg.epochs
        kd.seed_everything(cfg.seed)
        train = [i for i in train if "label" in i or "answers" in i]
        if self.task.shape == "record":
            train = [i for i in train if gold_rows(self.task, i)]
        steps_per_epoch = max(1, int(np.ceil(len(train) / cfg.batch_size)))
        total = steps_per_epoch * epochs
        warm = max(1, int(cfg.warmup_fraction * total))
        for p in self.net.collect_params().values():
            if p.name.endswith(("beta", "gamma", "bias")):
                p.wd_mult = 0.0
        trainer = mx.gluon.Trainer(self.net.collect_params(), nlp.optimizer.BERTAdam(
            learning_rate=cfg.lr, wd=cfg.weight_decay))
        step, history = 0, []
        rng = np.random.RandomState(cfg.seed)
        for epoch in range(epochs):
            order = rng.permutation(len(train))
            running = []
            for b in range(steps_per_epoch):
                batch = [train[j] for j in order[b * cfg.batch_size:(b + 1) * cfg.batch_size]]
                if not batch:
                    continue
                lr = cfg.lr * (step + 1) / warm if step < warm else cfg.lr * max(0.0, (total - step) / max(1, total - warm))
                trainer.set_learning_rate(lr)
                with mx.autograd.record():
                    loss = self.loss(batch)
                loss.backward()
                trainer.step(1, ignore_stale_grad=True)
                running.append(float(loss.asscalar()))
                step += 1
                if progress is not None:
                    progress(1)
            history.append(float(np.mean(running)) if running else 0.0)
        return history

    def predict(self, instances: Sequence[dict], batch_size: int = 64) -> list:
        """Label index / float score / option index / entity string, per instance."""
        out = []
        for s in range(0, len(instances), batch_size):
            chunk = list(instances[s:s + batch_size])
            scores, owner = self._scores(chunk)
            scores = scores.asnumpy()
            if self.task.shape == "regression":
                out.extend(float(v) * SCORE_RANGE for v in scores.reshape(-1))
            elif self.task.shape in OPTION_SHAPES:
                flat = scores.reshape(-1)
                for k, inst in enumerate(chunk):
                    best = int(np.argmax(flat[owner == k]))
                    out.append(inst["candidates"][best] if self.task.shape == "record" else best)
            else:
                out.extend(int(v) for v in scores.argmax(-1))
        return out

    def probabilities(self, instances: Sequence[dict], batch_size: int = 64) -> np.ndarray:
        """Class probabilities for the labeler's agreement statistics (classification shapes)."""
        import mxnet as mx
        out = []
        for s in range(0, len(instances), batch_size):
            scores, _ = self._scores(list(instances[s:s + batch_size]))
            out.append(mx.nd.softmax(scores, axis=-1).asnumpy())
        return np.concatenate(out)
