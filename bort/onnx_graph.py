"""The same BERT encoder as an ONNX graph, built from our architecture and the model's weights.

The timing stage's peer: ONNX Runtime runs exactly the network that GluonNLP runs --
same ⟨D, A, H, I⟩, same tensors -- so a latency ratio compares runtimes, not models. MXNet 1.9's
own `mx.onnx` exporter fails with current onnx, so we write the graph from the architecture:
embeddings (word + token type + position, layer norm), then per layer multi-head self-attention
(heads are contiguous blocks of H, as in GluonNLP), output projection, residual + layer norm,
GELU feed-forward (erf form, as GluonNLP's), residual + layer norm. Inputs are full-length
sequences (no padding), the case the timing stage measures; the output is the final hidden
sequence, compared with MXNet's to 1e-4.
"""
from __future__ import annotations

import math
from typing import Dict, Optional

import numpy as np

OPSET = 17          # LayerNormalization is a standard op from opset 17


def build(arch, arrays: Dict[str, np.ndarray], layers: Optional[int] = None):
    """An onnx.ModelProto computing the hidden states of `arch` with the given weights (GluonNLP
    structural names, as `bort.distillation.param_arrays` returns them) after its first `layers`
    transformer cells (default: all of them; fine-tuning runs a frozen lower part this way)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    h, heads = arch.hidden_size, arch.num_heads
    d = h // heads

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(op, inputs, name, **attrs):
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def dense(x, prefix, out):
        w = const(prefix + ".weight.T", arrays[prefix + ".weight"].T.astype(np.float32).copy())
        b = const(prefix + ".bias", arrays[prefix + ".bias"].astype(np.float32))
        return node("Add", [node("MatMul", [x, w], out + "_mm"), b], out)

    def layer_norm(x, prefix, out):
        g = const(prefix + ".gamma", arrays[prefix + ".gamma"].astype(np.float32))
        b = const(prefix + ".beta", arrays[prefix + ".beta"].astype(np.float32))
        return node("LayerNormalization", [x, g, b], out, axis=-1, epsilon=1e-12)

    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])
    types = helper.make_tensor_value_info("token_types", TensorProto.INT64, ["batch", "seq"])
    word = node("Gather", [const("word_embed", arrays["word_embed.0.weight"]), "input_ids"], "word")
    tok = node("Gather", [const("type_embed", arrays["token_type_embed.0.weight"]), "token_types"], "tok")
    # positions 0..seq-1: slice the position table to the input's length
    shape = node("Shape", ["input_ids"], "ids_shape")
    seq = node("Gather", [shape, const("one", np.array(1, np.int64))], "seq_len")
    seq1 = node("Unsqueeze", [seq, const("axes0", np.array([0], np.int64))], "seq_len_1d")
    pos = node("Slice", [const("position", arrays["encoder.position_weight"]),
                         const("zero_1d", np.array([0], np.int64)), seq1], "pos")
    x = node("Add", [node("Add", [word, tok], "word_tok"), pos], "emb")
    x = layer_norm(x, "encoder.layer_norm", "emb_ln")
    split_shape = const("split_shape", np.array([0, 0, heads, d], np.int64))
    merge_shape = const("merge_shape", np.array([0, 0, h], np.int64))
    scale = const("scale", np.array(1.0 / math.sqrt(d), np.float32))
    half, sqrt2, one = (const("half", np.array(0.5, np.float32)), const("sqrt2", np.array(math.sqrt(2), np.float32)),
                        const("one_f", np.array(1.0, np.float32)))
    for k in range(arch.depth if layers is None else layers):
        p = f"encoder.transformer_cells.{k}."
        qkv = {}
        for part in ("query", "key", "value"):
            proj = dense(x, f"{p}attention_cell.proj_{part}", f"l{k}_{part}")
            split = node("Reshape", [proj, split_shape], f"l{k}_{part}_heads")
            qkv[part] = node("Transpose", [split], f"l{k}_{part}_t", perm=[0, 2, 1, 3])   # B A L d
        kt = node("Transpose", [qkv["key"]], f"l{k}_key_tt", perm=[0, 1, 3, 2])
        scores = node("Mul", [node("MatMul", [qkv["query"], kt], f"l{k}_qk"), scale], f"l{k}_scores")
        attn = node("Softmax", [scores], f"l{k}_attn", axis=-1)
        ctx = node("Transpose", [node("MatMul", [attn, qkv["value"]], f"l{k}_ctx_h")], f"l{k}_ctx_t",
                   perm=[0, 2, 1, 3])
        ctx = node("Reshape", [ctx, merge_shape], f"l{k}_ctx")
        out = dense(ctx, f"{p}proj", f"l{k}_attn_out")
        x = layer_norm(node("Add", [out, x], f"l{k}_res1"), f"{p}layer_norm", f"l{k}_ln1")
        inner = dense(x, f"{p}ffn.ffn_1", f"l{k}_ffn1")
        erf = node("Erf", [node("Div", [inner, sqrt2], f"l{k}_div")], f"l{k}_erf")
        gelu = node("Mul", [node("Mul", [inner, half], f"l{k}_halfx"),
                            node("Add", [erf, one], f"l{k}_erf1")], f"l{k}_gelu")
        out = dense(gelu, f"{p}ffn.ffn_2", f"l{k}_ffn2")
        x = layer_norm(node("Add", [out, x], f"l{k}_res2"), f"{p}ffn.layer_norm", f"l{k}_ln2")
    nodes.append(helper.make_node("Identity", [x], ["hidden"], name="hidden"))
    out = helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", "seq", h])
    graph = helper.make_graph(nodes, f"bert_{'_'.join(map(str, arch.tuple))}", [ids, types], [out], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def session(model, threads: int = 0):
    """An ONNX Runtime CPU session with full graph optimisation, on `threads` threads (0: the
    OMP_NUM_THREADS of a one-thread worker process, bort.workers, else ONNX Runtime's default)."""
    import os
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    omp = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()     # OpenMP allows "4,2"
    threads = threads or (int(omp) if omp.isdigit() else 0)
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
