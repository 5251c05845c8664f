import numpy as np
import pytest

from bort import distillation as kd, onnx_graph, timing
from bort.arch import Arch

TINY = Arch(2, 4, 64, 128, vocab_size=1200, max_length=32)
SETTINGS = {"warmup": 1, "min_repeats": 3, "max_repeats": 5, "budget_s": 0.05}


def test_mxnet_timing_on_a_tiny_architecture():
    out = timing.time_mxnet(TINY, 2, 16, SETTINGS, peak=10.0)
    assert 3 <= out["repeats"] <= 5
    assert 0 < out["p50_ms"] <= out["p90_ms"] <= out["p99_ms"]
    assert out["gflops"] == pytest.approx(TINY.flops_per_seq(16) * 2 / (out["p50_ms"] / 1e3) / 1e9)
    assert out["fraction_of_peak"] == pytest.approx(out["gflops"] / 10.0)


def test_measure_respects_minimum_and_maximum():
    calls = []
    times = timing.measure(lambda: calls.append(1), warmup=2, min_repeats=4, max_repeats=6, budget_s=0.0)
    assert len(times) == 4 and len(calls) == 6
    times = timing.measure(lambda: None, warmup=0, min_repeats=1, max_repeats=7, budget_s=100.0)
    assert len(times) == 7


def test_onnx_graph_matches_mxnet():
    model = timing.random_model(TINY)
    ids, types, lengths = timing.inputs(TINY, 3, 16)
    session = onnx_graph.session(onnx_graph.build(TINY, kd.param_arrays(model)))
    out = session.run(None, {"input_ids": ids.asnumpy().astype(np.int64),
                             "token_types": types.asnumpy().astype(np.int64)})[0]
    np.testing.assert_allclose(out, model(ids, types, lengths)[0].asnumpy(), atol=1e-4)


def test_onnxruntime_timing_reports_agreement():
    model = timing.random_model(TINY)
    out = timing.time_onnxruntime(TINY, model, 2, 16, SETTINGS, peak=None)
    assert out["max_abs_diff_vs_mxnet"] < 1e-4 and out["p50_ms"] > 0


def test_int8_model_stays_close_to_fp32():
    """The quantised network computes (nearly) what the fp32 one does: the max difference is a
    small fraction of the output scale, and the timing row is complete."""
    model = timing.random_model(TINY)
    out = timing.time_int8(TINY, model, 2, 16, SETTINGS, peak=10.0)
    assert 0 < out["max_abs_diff_vs_fp32"] < 0.1 * out["max_abs_fp32_output"]
    assert out["p50_ms"] > 0 and out["fraction_of_peak"] == pytest.approx(out["gflops"] / 10.0)


def test_int8_rewrites_the_dense_layers():
    from bort import quantize
    model = timing.random_model(TINY)
    qnet = quantize.quantize(model, [timing.inputs(TINY, 2, 16)])
    graph = qnet._cached_graph[1].tojson()            # a SymbolBlock keeps its symbol here
    assert "quantize_v2" in graph and "interleaved_matmul_selfatt" in graph


def test_gemm_rate_is_positive():
    assert timing.gemm_peak_gflops(size=256, repeats=2) > 0


def test_gpu_is_skipped_cleanly_without_one(monkeypatch):
    import mxnet as mx
    monkeypatch.setattr(mx.context, "num_gpus", lambda: 0)
    assert timing.gpu_count() == 0

    def broken():
        raise RuntimeError("CUDA driver missing")
    monkeypatch.setattr(mx.context, "num_gpus", broken)
    assert timing.gpu_count() == 0


@pytest.mark.skipif(timing.gpu_count() == 0, reason="no GPU visible to MXNet")
def test_gpu_timing_when_present():
    import mxnet as mx
    out = timing.time_mxnet(TINY, 2, 16, SETTINGS, None, mx.gpu(0), timing.random_model(TINY, mx.gpu(0)))
    assert out["p50_ms"] > 0


def test_machine_description():
    info = timing.machine()
    assert info["logical_cores"] >= 1 and info["mxnet"].startswith("1.9")
