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

Budget knobs (`freeze_embeddings`, `frozen_layers`): fine-tuning on a few hundred examples is
step-bound, and most of a step is spent where it buys least -- the Adam update of the word
embeddings (5.9M of the embedded student's 6.5M parameters) and the backward pass through the
lowest layers. With the embeddings (and optionally the lowest `frozen_layers` cells) frozen,
their output is a fixed function of the row, so it is computed once per row, in inference mode,
and cached; every epoch then runs only the trainable top. Both default off: the companion
code fine-tunes everything, and paper scale does too.
"""
from __future__ import annotations

import itertools
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from bort import distillation as kd
from bort import params, tasks
from bort.errors import BortError
from bort.tasks import Task

log = logging.getLogger(__name__)
OPTION_SHAPES = ("choice", "record")
SCORE_RANGE = 5.0      # STS-B: the head predicts score / 5, so targets sit where a fresh head starts


@dataclass(frozen=True)
class FinetuneConfig:
    epochs: int = 3
    batch_size: int = 16          # encoded rows per step (instances x options / candidates)
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    dropout: float = 0.1
    max_len: int = 64
    max_len_passage: int = 128
    max_train: int = 0            # 0: all training examples
    pooling: str = "cls"          # cls: the companion code's [CLS] state; mean: mean over real tokens
    freeze_embeddings: bool = False   # keep the embeddings fixed and cache their output per row
    frozen_layers: int = 0            # ... and the lowest this many transformer cells (needs the above)
    frozen_runtime: str = "mxnet"     # what runs the frozen cells: mxnet, or onnxruntime (same graph, faster)
    seed: int = 0


CONFIG_KEYS = {k: type(v) for k, v in asdict(FinetuneConfig()).items()}
#: params.yaml `finetune` section: held-out policy, data folder, per-model configs, Agora
SECTION_SCHEMA = {"heldout": str, "data": str, "bert": dict, "bort": dict, "agora": dict}
#: the encoder each fine-tuned model starts from, and where fine-tuned models are written
ENCODERS = {"bert": Path("models/teacher"), "bort": Path("models/student"), "bort-agora": Path("models/student")}
FINETUNED = Path("models/finetune")
#: MNLI's mismatched sets are read with the matched task's training file, so its model scores them
SHARED_MODEL = {"MNLI-mm": "MNLI-m"}


def scored_by(task: Task) -> Optional[str]:
    """The task whose fine-tuned model scores `task` (diagnostics, MNLI-mm), or None if it trains."""
    return task.scored_by or SHARED_MODEL.get(task.name)


def config(section: dict, which: str) -> FinetuneConfig:
    """The checked FinetuneConfig of model `which` (bort-agora fine-tunes with Bort's)."""
    key = "bert" if which == "bert" else "bort"
    return FinetuneConfig(**params.check(dict(section[key]), CONFIG_KEYS, "finetune." + key))


def splits(task: Task, directory, heldout: str):
    """(train, Agora's dev, held-out, where the held-out numbers come from).

    Honest evaluation (bort.md section 4): Agora reads the Agora split of dev, so reported
    scores come from data it never saw -- the labelled test split (embedded data), or, for the
    official files whose test labels are hidden, a fixed seeded half of dev."""
    train = tasks.load_split(task, directory, "train") if "train" in task.splits else []
    dev = tasks.load_split(task, directory, "dev") if "dev" in task.splits else []
    test = tasks.load_split(task, directory, "test") if "test" in task.splits else []
    labelled_test = [i for i in test if "label" in i or "answers" in i]
    mode = heldout if heldout != "auto" else ("test" if labelled_test else "dev_half")
    if mode == "test":
        if not labelled_test:
            raise BortError(f"finetune.heldout is 'test' but {task.name}'s test split has no labels; "
                            "expected 'dev_half' for the official files")
        return train, dev, labelled_test, "test split (labelled; never seen by Agora)"
    rng = np.random.RandomState(1234)
    order = rng.permutation(len(dev))
    half = len(dev) // 2
    if task.shape == "multirc":       # keep a question's answers on one side
        groups = sorted({i["group"] for i in dev})
        held_groups = set(np.array(groups)[rng.permutation(len(groups))[:len(groups) // 2]])
        return ([*train], [i for i in dev if i["group"] not in held_groups],
                [i for i in dev if i["group"] in held_groups], "held-out half of dev (seeded; never seen by Agora)")
    held = [dev[j] for j in sorted(order[:half])]
    agora_dev = [dev[j] for j in sorted(order[half:])]
    return train, agora_dev, held, "held-out half of dev (seeded; never seen by Agora)"


def new_model(task: Task, which: str, cfg: FinetuneConfig) -> "TaskModel":
    """A fresh head on model `which`'s pretrained encoder, initialised from `cfg.seed` alone (not
    from whatever ran before in the same process)."""
    from bort import teacher
    kd.seed_everything(cfg.seed)
    encoder, vocab, arch = teacher.load_model(ENCODERS[which], dropout=cfg.dropout)
    return TaskModel(task, encoder, vocab, arch, cfg)


def load_trained(task: Task, which: str, cfg: FinetuneConfig) -> "TaskModel":
    """Model `which` as the finetune stage left it for `task`."""
    model = new_model(task, which, cfg)
    model.net.load_parameters(str(FINETUNED / which / task.name / "model.params"))
    return model


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
            return self.pool_head(F, self.encoder(ids, types, lengths)[0], lengths)

        def pool_head(self, F, seq, lengths):
            """Scores from the encoder's (batch, length, hidden) states (padding already zeroed)."""
            if pooling == "mean":
                summed = F.sum(F.SequenceMask(seq, sequence_length=lengths, use_sequence_length=True, axis=1), axis=1)
                return self.head(F.broadcast_div(summed, lengths.reshape((-1, 1))))
            return self.head(F.slice_axis(seq, axis=1, begin=0, end=1).reshape((0, -1)))

    net = Classifier()
    net.head.initialize(mx.init.Xavier())
    return net


def _attention_lengths(F, x, lengths):
    """The (batch, length) int32 valid lengths GluonNLP's cells expect, for x of (length, batch, C)."""
    steps = F.contrib.arange_like(x, axis=0)
    return F.cast(F.broadcast_add(lengths.reshape((-1, 1)), F.zeros_like(steps).reshape((1, -1))), dtype="int32")


def lower_states(bert, ids, types, lengths, frozen_layers: int):
    """(length, batch, hidden) states after the embeddings and the lowest `frozen_layers` cells:
    GluonNLP's BERTModel/BERTEncoder forward up to that cell, in inference mode (no dropout)."""
    import mxnet as mx
    F = mx.nd
    emb = bert.word_embed(ids)
    if bert._use_token_type_embed:
        emb = emb + bert.token_type_embed(types)
    x = emb.transpose((1, 0, 2))
    enc = bert.encoder
    positions = F.Embedding(F.contrib.arange_like(x, axis=0), enc.position_weight.data(), enc._max_length, enc._units)
    x = enc.layer_norm(F.broadcast_add(x, F.expand_dims(positions, axis=1)))
    attention = _attention_lengths(F, x, lengths)
    for cell in enc.transformer_cells[:frozen_layers]:
        x, _ = cell(x, attention)
    return x


def upper_scores(net, x, lengths, frozen_layers: int):
    """Scores from lower states: the remaining cells, the final mask, then pooling and head."""
    import mxnet as mx
    F = mx.nd
    enc = net.encoder.encoder
    attention = _attention_lengths(F, x, lengths)
    for cell in enc.transformer_cells[frozen_layers:]:
        x, _ = cell(x, attention)
    x = F.SequenceMask(x, sequence_length=lengths, use_sequence_length=True, axis=0)
    return net.pool_head(F, x.transpose((1, 0, 2)), lengths)


def freeze_lower(net, frozen_layers: int) -> None:
    """No gradients for the embeddings and the lowest `frozen_layers` cells."""
    bert = net.encoder
    blocks = [bert.word_embed, bert.encoder.layer_norm, *bert.encoder.transformer_cells[:frozen_layers]]
    if bert._use_token_type_embed:
        blocks.append(bert.token_type_embed)
    for block in blocks:
        for p in block.collect_params().values():
            p.grad_req = "null"
    bert.encoder.position_weight.grad_req = "null"


class TaskModel:
    """An encoder + head fine-tuned on one task; `predict` returns metric-ready predictions."""

    def __init__(self, task: Task, encoder_model, vocab, arch, cfg: FinetuneConfig):
        self.task, self.vocab, self.arch, self.cfg = task, vocab, arch, cfg
        hidden = arch.hidden_size
        if task.shape == "regression" or task.shape in OPTION_SHAPES:
            outputs = 1
        elif task.shape == "multirc":
            outputs = 2
        else:
            outputs = len(task.labels)
        self.net = build_classifier(encoder_model, hidden, outputs, cfg.dropout, cfg.pooling)
        self.encode = Encoder(vocab)
        depth = len(encoder_model.encoder.transformer_cells)
        if cfg.frozen_layers and not cfg.freeze_embeddings:
            raise BortError("params.yaml: finetune frozen_layers > 0 needs freeze_embeddings: true")
        if not 0 <= cfg.frozen_layers <= depth:
            raise BortError(f"params.yaml: finetune frozen_layers: expected 0..{depth} (the encoder's depth), "
                            f"got {cfg.frozen_layers}")
        self.frozen: Optional[int] = cfg.frozen_layers if cfg.freeze_embeddings else None
        if cfg.frozen_runtime not in ("mxnet", "onnxruntime"):
            raise BortError(f"params.yaml: finetune frozen_runtime: expected 'mxnet' or 'onnxruntime', "
                            f"got {cfg.frozen_runtime!r}")
        self._session = None           # ONNX Runtime session of the frozen part, built on first use
        self._lower: Dict[tuple, np.ndarray] = {}       # row key -> cached lower states (length, hidden)
        if self.frozen is not None:
            freeze_lower(self.net, self.frozen)
        self.max_len = cfg.max_len_passage if task.suite == "race" or task.shape in ("record", "multirc") \
            or task.name in ("BoolQ",) else cfg.max_len

    def _rows(self, instances):
        rows, keys, owner = [], [], []
        for k, inst in enumerate(instances):
            for first, second in row_texts(self.task, inst):
                rows.append(self.encode(first, second, self.max_len))
                keys.append((first, second))
                owner.append(k)
        return rows, keys, np.asarray(owner)

    def _scores(self, instances, cache: bool = False):
        import mxnet as mx
        rows, keys, owner = self._rows(instances)
        if self.frozen is None:
            ids, types, lengths = pad_rows(rows, self.vocab[self.vocab.padding_token])
            return self.net(mx.nd.array(ids), mx.nd.array(types), mx.nd.array(lengths)), owner
        states = self._lower_states(rows, keys, cache)
        width = max(r[1] for r in rows)
        x = np.zeros((width, len(rows), states[0].shape[1]), np.float32)
        for k, st in enumerate(states):
            x[:len(st), k] = st
        lengths = mx.nd.array([r[1] for r in rows])
        return upper_scores(self.net, mx.nd.array(x), lengths, self.frozen), owner

    def _lower_states(self, rows, keys, cache: bool) -> List[np.ndarray]:
        """Each row's frozen-part states, computed once per row while `cache` (training) is on;
        rows not yet known are computed shortest first."""
        todo = sorted({k for k, key in enumerate(keys) if key not in self._lower}, key=lambda k: rows[k][1])
        compute = self._lower_onnx if self.cfg.frozen_runtime == "onnxruntime" and self.frozen else self._lower_mxnet
        fresh = compute(rows, keys, todo)
        if cache:
            self._lower.update(fresh)
        return [self._lower[key] if key in self._lower else fresh[key] for key in keys]

    def _lower_mxnet(self, rows, keys, todo) -> Dict[tuple, np.ndarray]:
        """The frozen part in MXNet: padded batches of 64 rows (GluonNLP masks by length)."""
        import mxnet as mx
        fresh: Dict[tuple, np.ndarray] = {}
        for s in range(0, len(todo), 64):
            part = [rows[k] for k in todo[s:s + 64]]
            ids, types, lengths = pad_rows(part, self.vocab[self.vocab.padding_token])
            out = lower_states(self.net.encoder, mx.nd.array(ids), mx.nd.array(types), mx.nd.array(lengths),
                               self.frozen).asnumpy()
            for j, k in enumerate(todo[s:s + 64]):
                fresh[keys[k]] = out[:rows[k][1], j].copy()
        return fresh

    def _lower_onnx(self, rows, keys, todo) -> Dict[tuple, np.ndarray]:
        """The frozen part in ONNX Runtime (bort.onnx_graph: the same embeddings and cells, the
        same weights; 2-3x MXNet's speed on CPU in the `time` stage). `todo` is sorted by length,
        so each batch holds rows of one exact length: no padding, and the graph needs no mask."""
        from bort import onnx_graph
        if self._session is None:
            self._session = onnx_graph.session(onnx_graph.build(self.arch, kd.param_arrays(self.net.encoder), self.frozen))
        fresh: Dict[tuple, np.ndarray] = {}
        for length, same in itertools.groupby(todo, key=lambda k: rows[k][1]):
            same = list(same)
            for s in range(0, len(same), 64):
                part = same[s:s + 64]
                ids = np.stack([rows[k][0][:length] for k in part]).astype(np.int64)
                types = np.stack([rows[k][2][:length] for k in part]).astype(np.int64)
                out = self._session.run(None, {"input_ids": ids, "token_types": types})[0]
                for j, k in enumerate(part):
                    fresh[keys[k]] = out[j].copy()
        return fresh

    def loss(self, instances, cache: bool = False):
        import mxnet as mx
        scores, owner = self._scores(instances, cache)
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
        # batch_size counts encoded rows: a RACE question is 4 rows, so a step takes 4 questions
        rows = float(np.mean([len(row_texts(self.task, i)) for i in train])) if train else 1.0
        per_step = max(1, int(round(cfg.batch_size / rows)))
        steps_per_epoch = max(1, int(np.ceil(len(train) / per_step)))
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
                batch = [train[j] for j in order[b * per_step:(b + 1) * per_step]]
                if not batch:
                    continue
                lr = cfg.lr * (step + 1) / warm if step < warm else cfg.lr * max(0.0, (total - step) / max(1, total - warm))
                trainer.set_learning_rate(lr)
                with mx.autograd.record():
                    loss = self.loss(batch, cache=True)
                loss.backward()
                trainer.step(1, ignore_stale_grad=True)
                running.append(float(loss.asscalar()))
                step += 1
                if progress is not None:
                    progress(1)
            history.append(float(np.mean(running)) if running else 0.0)
        return history

    def quantize(self, calibration: Sequence[dict], batch_size: int = 32) -> "TaskModel":
        """Replace the network by its oneDNN int8 version (bort.quantize), calibrated on
        `calibration` instances (training data: never the held-out split). Afterwards the model
        predicts through the full network (no cached lower states)."""
        import mxnet as mx
        from bort import quantize
        rows, _, _ = self._rows(list(calibration))
        pad = self.vocab[self.vocab.padding_token]
        batches = []
        for s in range(0, len(rows) - batch_size + 1, batch_size):      # whole batches: one shape
            ids, types, lengths = pad_rows(rows[s:s + batch_size], pad)
            ids = np.pad(ids, ((0, 0), (0, self.max_len - ids.shape[1])), constant_values=pad)
            types = np.pad(types, ((0, 0), (0, self.max_len - types.shape[1])))
            batches.append((mx.nd.array(ids), mx.nd.array(types), mx.nd.array(lengths)))
        self.net.hybridize()
        self.net = quantize.quantize(self.net, batches)
        self.frozen = None
        return self

    def _length_chunks(self, instances: Sequence[dict], batch_size: int):
        """Instances in chunks of similar length (longest row first), so batches carry little
        padding; each chunk is a list of indices into `instances`."""
        longest = [max(self.encode(a, b, self.max_len)[1] for a, b in row_texts(self.task, inst))
                   for inst in instances]
        order = sorted(range(len(instances)), key=lambda k: (-longest[k], k))
        return [order[s:s + batch_size] for s in range(0, len(order), batch_size)]

    def predict(self, instances: Sequence[dict], batch_size: int = 64) -> list:
        """Label index / float score / option index / entity string, per instance."""
        out: list = [None] * len(instances)
        for idx in self._length_chunks(instances, batch_size):
            chunk = [instances[k] for k in idx]
            scores, owner = self._scores(chunk)
            scores = scores.asnumpy()
            if self.task.shape == "regression":
                preds = [float(v) * SCORE_RANGE for v in scores.reshape(-1)]
            elif self.task.shape in OPTION_SHAPES:
                flat = scores.reshape(-1)
                preds = []
                for k, inst in enumerate(chunk):
                    best = int(np.argmax(flat[owner == k]))
                    preds.append(inst["candidates"][best] if self.task.shape == "record" else best)
            else:
                preds = [int(v) for v in scores.argmax(-1)]
            for k, pred in zip(idx, preds):
                out[k] = pred
        return out
