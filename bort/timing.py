"""Inference timing of BERT and Bort architectures, against the machine's fp32 peak and ONNX Runtime.

Bort's headline is speed (arXiv 2010.10499: "7.9x faster than BERT-base on a CPU"; the authors'
blog: about 20x faster than BERT-large). Timing needs no trained weights -- the cost of a dense network does not
depend on its values -- so paper-scale architectures are timed here with random weights, all in
one run so that every ratio is apples to apples.

- Models are GluonNLP `BERTModel`s hybridised with static_alloc/static_shape, fp32, on full
  sequences; warm-up calls are excluded; each (model, batch) is repeated until a time budget or
  a maximum count, at least `min_repeats` times; latency percentiles are over those calls.
- Achieved GFLOP/s uses the analytic FLOPs of `bort.arch`; "% of peak" divides it by the best
  fp32 GEMM the machine's own engines reach in the same run (`gemm_rates`, `set_peak`).
- The peer is ONNX Runtime running the same graph with the same weights (bort.onnx_graph).
- The models are always timed on the CPU (the papers' claim is CPU speed; ONNX Runtime and int8
  are CPU peers); when params.yaml `device` starts with a GPU context (bort.device) they are
  timed on it as well.
"""
from __future__ import annotations

import logging
import os
import platform
import time
from dataclasses import dataclass
from typing import Dict, List

import numpy as np

from bort.arch import Arch
from bort.device import gpu_count
from bort.params import ParamError, Section, positive

log = logging.getLogger(__name__)
EMBEDDED = ("embedded_source", "embedded_student")      # timed beside the paper-scale models


@dataclass(frozen=True)
class TimeConfig(Section):
    """params.yaml `time`."""
    batch_sizes: List[int]
    seq_len: int
    warmup: int
    min_repeats: int               # timed calls per model and batch: at least this many ...
    max_repeats: int               # ... and more while budget_s lasts, up to this many
    budget_s: float
    gemm_size: int                 # n of the n x n fp32 GEMMs that measure the machine's peak
    models: Dict[str, List[int]]   # name -> [D, A, H, I, vocab]; the embedded source and student are added
    onnx_models: List[str]
    onnx_threads: int              # 0: ONNX Runtime's default (all cores)
    int8_models: List[str]         # also timed with oneDNN int8 dense layers (bort.quantize)

    def validate(self) -> None:
        positive(self, "seq_len", "min_repeats", "max_repeats", "gemm_size")
        for name, spec in self.models.items():
            if len(spec) != 5:
                raise ParamError(f"models.{name}", f"expected [D, A, H, I, vocab_size], got {spec!r}")
        known = sorted([*self.models, *EMBEDDED])
        for key in ("onnx_models", "int8_models"):
            for name in getattr(self, key):
                if name not in known:
                    raise ParamError(key, f"unknown model {name!r}; expected one of {known}")

    def architectures(self, source: Arch, student: Arch) -> Dict[str, Arch]:
        """The paper-scale architectures named here, then the embedded source and student."""
        archs = {name: Arch(*spec[:4], vocab_size=spec[4]) for name, spec in self.models.items()}
        archs.update(zip(EMBEDDED, (source, student)))
        return archs


def gemm_rates(size: int = 2048, repeats: int = 5, onnx_threads: int = 0) -> Dict[str, float]:
    """Best-of-`repeats` fp32 n x n GEMM rate (2·n³ FLOPs per product), in GFLOP/s, of each engine
    this stage times: numpy (OpenBLAS), MXNet's FullyConnected (oneDNN, what the models' dense
    layers run) and ONNX Runtime's MatMul (MLAS), each on the threads its timed models use. One
    engine is not enough: numpy's OpenBLAS 0.3.20 predates newer CPUs and may run generic kernels
    on them (threadpoolctl reports 'Prescott', SSE3, on an AVX-512 Xeon), so on the committed AMD
    run ONNX Runtime ran Bort at 386 GFLOP/s against numpy's 240."""
    import mxnet as mx
    from bort import onnx_graph
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.RandomState(0)
    a, b = (rng.standard_normal((size, size)).astype(np.float32) for _ in range(2))
    a_mx, b_mx = mx.nd.array(a), mx.nd.array(b)
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "gemm",
                              [helper.make_tensor_value_info("a", TensorProto.FLOAT, [size, size])],
                              [helper.make_tensor_value_info("c", TensorProto.FLOAT, [size, size])],
                              [numpy_helper.from_array(b, "b")])           # a weight, as in the models
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", onnx_graph.OPSET)])
    model.ir_version = 8
    session = onnx_graph.session(model, onnx_threads)
    calls = {"numpy": lambda: a @ b,
             "mxnet": lambda: mx.nd.FullyConnected(a_mx, b_mx, num_hidden=size, no_bias=True).wait_to_read(),
             "onnxruntime": lambda: session.run(None, {"a": a})}
    return {engine: 2 * size ** 3 / min(measure(call, 1, repeats, repeats, 0.0)) / 1e9
            for engine, call in calls.items()}


def set_peak(result: dict, gemm: Dict[str, float]) -> None:
    """Fill `result`'s peak and every row's fraction of it. The peak is the best of the engines'
    GEMM rates (`gemm_rates`) and of the fp32 CPU model rows measured in the same run (MXNet and
    ONNX Runtime): a model can do no more useful work per second than the machine's peak, so a
    row above every GEMM means the GEMMs fell short, and that row is the better bound. Hence no
    fp32 row exceeds 100% of peak; `peak_from` names what set it. int8 rows count fp32 FLOPs and
    are divided by the same fp32 peak, so they may exceed 100%: the same work in narrower arithmetic."""
    candidates = {f"{engine} GEMM": rate for engine, rate in gemm.items()}
    for section in ("models", "onnxruntime"):
        for name, per_batch in result.get(section, {}).items():
            candidates.update({f"{name} {b} ({'mxnet' if section == 'models' else section})": row["gflops"]
                               for b, row in per_batch.items() if isinstance(row, dict)})
    source = max(candidates, key=candidates.get)
    result.update({"gemm_gflops": dict(gemm), "gemm_peak_gflops": candidates[source], "peak_from": source})
    for section in ("models", "onnxruntime", "int8"):
        for per_batch in result.get(section, {}).values():
            for row in per_batch.values():
                if isinstance(row, dict):
                    row["fraction_of_peak"] = row["gflops"] / candidates[source]


def random_model(arch: Arch, ctx=None, seed: int = 0):
    """A hybridised BERTModel of `arch` with seeded random weights (values do not change cost)."""
    import mxnet as mx
    ctx = ctx or mx.cpu()
    mx.random.seed(seed)
    model = arch.build()
    model.initialize(mx.init.Normal(0.02), ctx=ctx)
    model(*inputs(arch, 1, 2, ctx))                                 # resolve deferred shapes
    model.hybridize(static_alloc=True, static_shape=True)
    return model


def inputs(arch: Arch, batch: int, seq_len: int, ctx=None, seed: int = 0):
    import mxnet as mx
    ctx = ctx or mx.cpu()
    rng = np.random.RandomState(seed)
    ids = rng.randint(1000 % arch.vocab_size, arch.vocab_size, size=(batch, seq_len))
    return (mx.nd.array(ids, ctx=ctx), mx.nd.zeros((batch, seq_len), ctx=ctx),
            mx.nd.full((batch,), seq_len, ctx=ctx))


def measure(call, warmup: int, min_repeats: int, max_repeats: int, budget_s: float) -> List[float]:
    """Seconds per call: `warmup` untimed calls, then at least `min_repeats` timed ones, more
    while the budget lasts (up to `max_repeats`)."""
    for _ in range(warmup):
        call()
    times: List[float] = []
    spent = 0.0
    while len(times) < min_repeats or (len(times) < max_repeats and spent < budget_s):
        start = time.perf_counter()
        call()
        elapsed = time.perf_counter() - start
        times.append(elapsed)
        spent += elapsed
    return times


def summarize(times: List[float], flops: float, batch: int) -> Dict[str, float]:
    p50, p90, p99 = np.percentile(times, [50, 90, 99])
    return {"p50_ms": 1e3 * p50, "p90_ms": 1e3 * p90, "p99_ms": 1e3 * p99, "repeats": len(times),
            "throughput_seq_per_s": batch / p50, "gflops": flops * batch / p50 / 1e9}


def time_mxnet(arch: Arch, batch: int, seq_len: int, settings: dict, ctx=None, model=None) -> Dict[str, float]:
    import mxnet as mx
    model = model or random_model(arch, ctx)
    ids, types, lengths = inputs(arch, batch, seq_len, ctx)

    def call():
        out = model(ids, types, lengths)
        mx.nd.waitall() if ctx is not None else out[0].wait_to_read()
    times = measure(call, settings["warmup"], settings["min_repeats"], settings["max_repeats"], settings["budget_s"])
    return summarize(times, arch.flops_per_seq(seq_len), batch)


def time_int8(arch: Arch, fp32_model, batch: int, seq_len: int, settings: dict,
              calibration_batches: int = 2) -> Dict[str, float]:
    """The same weights quantised to int8 (bort.quantize), calibrated on seeded random inputs of
    the timed shape; GFLOP/s (and the fraction of peak, `set_peak`) count the fp32 FLOPs, so they
    compare directly with the fp32 rows. Also the largest output difference from fp32 on the timed
    input."""
    from bort import quantize
    calibration = [inputs(arch, batch, seq_len, seed=1 + k) for k in range(calibration_batches)]
    qnet = quantize.quantize(fp32_model, calibration)
    qnet.hybridize(static_alloc=True, static_shape=True)
    data = inputs(arch, batch, seq_len)
    diff, scale = quantize.max_abs_diff(fp32_model, qnet, list(data))
    times = measure(lambda: quantize.first_output(qnet(*data)).wait_to_read(), settings["warmup"],
                    settings["min_repeats"], settings["max_repeats"], settings["budget_s"])
    out = summarize(times, arch.flops_per_seq(seq_len), batch)
    out.update({"max_abs_diff_vs_fp32": diff, "max_abs_fp32_output": scale})
    return out


def time_onnxruntime(arch: Arch, model, batch: int, seq_len: int, settings: dict,
                     threads: int = 0) -> Dict[str, float]:
    """ONNX Runtime on the same weights; also the largest absolute difference from MXNet."""
    from bort import distillation as kd, onnx_graph
    session = onnx_graph.session(onnx_graph.build(arch, kd.param_arrays(model)), threads)
    ids, types, lengths = inputs(arch, batch, seq_len)
    feed = {"input_ids": ids.asnumpy().astype(np.int64), "token_types": types.asnumpy().astype(np.int64)}
    reference = model(ids, types, lengths)[0].asnumpy()
    diff = float(np.abs(session.run(None, feed)[0] - reference).max())
    times = measure(lambda: session.run(None, feed), settings["warmup"], settings["min_repeats"],
                    settings["max_repeats"], settings["budget_s"])
    out = summarize(times, arch.flops_per_seq(seq_len), batch)
    out["max_abs_diff_vs_mxnet"] = diff
    return out


def machine() -> Dict[str, object]:
    """What the numbers were measured on: CPU model, cores, library versions."""
    import mxnet as mx
    import gluonnlp as nlp
    import onnxruntime as ort
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    features = mx.runtime.Features()
    return {"cpu": cpu, "logical_cores": os.cpu_count(), "python": platform.python_version(),
            "mxnet": mx.__version__, "gluonnlp": nlp.__version__, "numpy": np.__version__,
            "onnxruntime": ort.__version__, "mxnet_onednn": features.is_enabled("MKLDNN"),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset"), "gpus": gpu_count()}
