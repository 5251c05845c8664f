"""The fixed lower part of a fine-tuned model -- embeddings and the lowest cells -- cached per row.

With `freeze_embeddings` (and `frozen_layers` cells) the lower part's output is a fixed function
of the row, so it is computed once per row, in inference mode (no dropout), and every epoch runs
only the trainable top. Two runtimes compute it and agree to 1e-5: MXNet, as GluonNLP's
BERTModel / BERTEncoder forward up to that cell, in padded batches; and ONNX Runtime on the same
graph and weights (bort.onnx_graph), 2-3x MXNet's speed on CPU in the `time` stage, in batches of
one exact length (no padding, so the graph needs no mask).

Devices (bort.device): the cache is host memory (numpy), shared by every context. MXNet computes a
row's states on the context whose shard first needs it (the first context when predicting); ONNX
Runtime always runs on the CPU, from the weights as they are on that context -- the frozen part is
a one-off cost per row, and the top trains on the device.
"""
from __future__ import annotations

import itertools
from typing import Dict, List, Optional

import numpy as np

from bort import distillation as kd
from bort.encoding import pad_rows

BATCH = 64


class SharedStates(dict):
    """Row key -> lower states, shared by the runs of one model on one task in a worker (the
    seeds, the search's candidates, Agora's labeler and student), with the ONNX Runtime session
    that computes them: built once, since the frozen weights are the pretrained encoder's in every
    run that shares the states (building it took 2.7 s of a 22 s BERT run)."""
    session = None


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


class FrozenPart:
    """The lower part of `net` (a bort.finetune.head classifier): frozen, computed by `runtime`,
    each row's states cached while training."""

    def __init__(self, net, arch, layers: int, runtime: str, pad_id: int, cache: Optional[SharedStates] = None):
        self.net, self.arch, self.layers, self.pad_id = net, arch, layers, pad_id
        # with no frozen cell only the embeddings are fixed: nothing for ONNX Runtime to gain
        self.compute = {"mxnet": self._mxnet, "onnxruntime": self._onnx}[runtime if layers else "mxnet"]
        # row key -> lower states (length, hidden), and the ONNX Runtime session (built on first
        # use); may be shared by runs on the same encoder
        self.cache = SharedStates() if cache is None else cache
        freeze_lower(net, layers)

    def scores(self, rows, keys, cache: bool):
        """The model's scores for encoded rows: cached (or fresh) lower states, then the top."""
        import mxnet as mx
        states = self.states(rows, keys, cache)
        width = max(r[1] for r in rows)
        x = np.zeros((width, len(rows), states[0].shape[1]), np.float32)
        for k, st in enumerate(states):
            x[:len(st), k] = st
        lengths = mx.nd.array([r[1] for r in rows])
        return upper_scores(self.net, mx.nd.array(x), lengths, self.layers)

    def states(self, rows, keys, cache: bool) -> List[np.ndarray]:
        """Each row's lower states, kept while `cache` (training) is on; rows not yet known are
        computed shortest first."""
        todo = sorted({k for k, key in enumerate(keys) if key not in self.cache}, key=lambda k: rows[k][1])
        fresh = self.compute(rows, keys, todo)
        if cache:
            self.cache.update(fresh)
        return [self.cache[key] if key in self.cache else fresh[key] for key in keys]

    def _mxnet(self, rows, keys, todo) -> Dict[tuple, np.ndarray]:
        """Padded batches (GluonNLP masks by length), in inference mode even inside a training
        step's autograd.record (no dropout in the frozen cells, nothing recorded)."""
        import mxnet as mx
        fresh: Dict[tuple, np.ndarray] = {}
        for s in range(0, len(todo), BATCH):
            part = [rows[k] for k in todo[s:s + BATCH]]
            ids, types, lengths = pad_rows(part, self.pad_id)
            with mx.autograd.pause():
                out = lower_states(self.net.encoder, mx.nd.array(ids), mx.nd.array(types), mx.nd.array(lengths),
                                   self.layers).asnumpy()
            for j, k in enumerate(todo[s:s + BATCH]):
                fresh[keys[k]] = out[:rows[k][1], j].copy()
        return fresh

    def _onnx(self, rows, keys, todo) -> Dict[tuple, np.ndarray]:
        """Batches of one exact length (`todo` is sorted by length): no padding, no mask."""
        from bort import onnx_graph
        if self.cache.session is None:
            self.cache.session = onnx_graph.session(onnx_graph.build(self.arch, kd.param_arrays(self.net.encoder),
                                                                     self.layers))
        fresh: Dict[tuple, np.ndarray] = {}
        for length, same in itertools.groupby(todo, key=lambda k: rows[k][1]):
            same = list(same)
            for s in range(0, len(same), BATCH):
                part = same[s:s + BATCH]
                ids = np.stack([rows[k][0][:length] for k in part]).astype(np.int64)
                types = np.stack([rows[k][2][:length] for k in part]).astype(np.int64)
                out = self.cache.session.run(None, {"input_ids": ids, "token_types": types})[0]
                for j, k in enumerate(part):
                    fresh[keys[k]] = out[j].copy()
        return fresh
