"""int8 inference for Bort on CPU: MXNet's oneDNN quantisation of the dense layers.

Why: a profile of ⟨4, 8, 768, 1024⟩ (Bort with H and I swapped; as released it is ⟨4, 8, 1024, 768⟩) at batch 8, length 128 on
this project's 2-core machine puts ~75% of fp32 inference in FullyConnected, ~11% in the
length-masked softmax and ~5% in LayerNorm. The dense layers are where int8 pays: oneDNN runs
them with VNNI instructions where the CPU has them. `mx.contrib.quantization.quantize_net_v2`
does the graph rewrite and the calibration; we choose what stays fp32:

- the fused self-attention matmuls (`interleaved_matmul_selfatt_*`): MXNet 1.9's quantised
  versions fail type inference on GluonNLP's BERT graph ("Type inconsistent, provided int8,
  inferred uint8"), so they stay fp32;
- the embeddings and the pooler: lookups and one small layer, nothing to gain.

Calibration is `naive` (min/max of each layer's output over the calibration batches), so the
result is a deterministic function of the weights and the calibration data.
"""
from __future__ import annotations

import logging
from typing import List, Sequence, Tuple

#: layer-name patterns kept in fp32 (see the module docstring)
FP32_LAYERS = ("interleaved", "embed", "pooler")
FP32_OPERATORS = ("Embedding", "elemwise_add", "_plus", "Concat", "broadcast_add")


def quantize(net, calibration: Sequence[Tuple], quiet: bool = True):
    """An int8 SymbolBlock computing what `net` (a HybridBlock taking (ids, types, lengths))
    computes; `calibration` is a list of such input triples (NDArrays), all of one shape."""
    import mxnet as mx
    from mxnet.contrib import quantization

    columns = list(zip(*calibration))
    data = mx.gluon.data.ArrayDataset(*[mx.nd.concat(*col, dim=0).asnumpy() for col in columns])
    batch = calibration[0][0].shape[0]
    loader = mx.gluon.data.DataLoader(data, batch_size=batch, shuffle=False)
    level = logging.getLogger().level
    try:
        if quiet:
            logging.getLogger().setLevel(logging.WARNING)
        qnet = quantization.quantize_net_v2(
            net, quantized_dtype="int8", quantize_mode="smart", exclude_layers_match=list(FP32_LAYERS),
            exclude_operators=list(FP32_OPERATORS), calib_data=loader, calib_mode="naive",
            num_calib_examples=len(data), ctx=mx.cpu())
    finally:
        logging.getLogger().setLevel(level)
    return qnet


def first_output(out):
    """The sequence output of a BERTModel-like call (a tuple) or the only output."""
    return out[0] if isinstance(out, (list, tuple)) else out


def max_abs_diff(reference, candidate, inputs: List) -> Tuple[float, float]:
    """(largest |difference| of the first outputs, largest |reference output|) on `inputs`."""
    ref = first_output(reference(*inputs)).asnumpy()
    got = first_output(candidate(*inputs)).asnumpy()
    return float(abs(ref - got).max()), float(abs(ref).max())
