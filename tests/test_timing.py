import re

import numpy as np
import pytest

from bort import distillation as kd, onnx_graph, report_architecture, timing
from bort.arch import Arch

TINY = Arch(2, 4, 64, 128, vocab_size=1200, max_length=32)
SETTINGS = {"warmup": 1, "min_repeats": 3, "max_repeats": 5, "budget_s": 0.05}


def test_mxnet_timing_on_a_tiny_architecture():
    out = timing.time_mxnet(TINY, 2, 16, SETTINGS)
    assert 3 <= out["repeats"] <= 5
    assert 0 < out["p50_ms"] <= out["p90_ms"] <= out["p99_ms"]
    assert out["gflops"] == pytest.approx(TINY.flops_per_seq(16) * 2 / (out["p50_ms"] / 1e3) / 1e9)


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
    out = timing.time_onnxruntime(TINY, model, 2, 16, SETTINGS)
    assert out["max_abs_diff_vs_mxnet"] < 1e-4 and out["p50_ms"] > 0


def test_int8_model_stays_close_to_fp32():
    """The quantised network computes (nearly) what the fp32 one does: the max difference is a
    small fraction of the output scale, and the timing row is complete."""
    model = timing.random_model(TINY)
    out = timing.time_int8(TINY, model, 2, 16, SETTINGS)
    assert 0 < out["max_abs_diff_vs_fp32"] < 0.1 * out["max_abs_fp32_output"]
    assert out["p50_ms"] > 0 and out["gflops"] > 0


def test_int8_rewrites_the_dense_layers():
    from bort import quantize
    model = timing.random_model(TINY)
    qnet = quantize.quantize(model, [timing.inputs(TINY, 2, 16)])
    graph = qnet._cached_graph[1].tojson()            # a SymbolBlock keeps its symbol here
    assert "quantize_v2" in graph and "interleaved_matmul_selfatt" in graph


def test_every_engine_has_a_gemm_rate():
    rates = timing.gemm_rates(size=128, repeats=2)
    assert sorted(rates) == ["mxnet", "numpy", "onnxruntime"] and all(r > 0 for r in rates.values())


def row(gflops):
    return {"p50_ms": 10.0, "p90_ms": 11.0, "gflops": gflops}


def synthetic_run(bort_mxnet=126.6, bort_onnxruntime=386.0, bort_int8=355.0):
    """The committed AMD run's shape: ONNX Runtime runs Bort faster than numpy's GEMM (240)."""
    models = {name: {"arch": [4, 8, 1024, 768], "flops_per_seq": 6.18e9, "b1": row(rate), "b8": row(1.3 * rate)}
              for name, rate in (("bort", bort_mxnet), ("bert_base", 143.4))}
    return {"machine": {"cpu": "test CPU", "logical_cores": 2, "mxnet": "1.9.1", "mxnet_onednn": True,
                        "gluonnlp": "0.10.0", "onnxruntime": "1.32.0"},
            "seq_len": 128, "models": models, "speedup": {}, "gpu": "skipped: device cpu(0)",
            "onnxruntime": {"bort": {"b1": dict(row(bort_onnxruntime), mxnet_over_onnxruntime=3.0,
                                                max_abs_diff_vs_mxnet=1e-6)}},
            "int8": {"bort": {"b1": dict(row(bort_int8), fp32_over_int8=1.9, max_abs_diff_vs_fp32=0.06,
                                         max_abs_fp32_output=4.9)}}}


def test_peak_is_the_best_engine_gemm():
    run = synthetic_run(bort_onnxruntime=180.0, bort_int8=250.0)
    timing.set_peak(run, {"numpy": 240.3, "mxnet": 210.0, "onnxruntime": 300.0})
    assert run["gemm_peak_gflops"] == 300.0 and run["peak_from"] == "onnxruntime GEMM"
    assert run["models"]["bort"]["b1"]["fraction_of_peak"] == pytest.approx(126.6 / 300.0)
    assert run["gemm_gflops"]["numpy"] == 240.3


def test_a_model_faster_than_every_gemm_sets_the_peak():
    """No fp32 row is reported above 100% of peak: a model row beating every GEMM becomes the peak
    (int8 rows count fp32 FLOPs and may pass it)."""
    run = synthetic_run()
    timing.set_peak(run, {"numpy": 240.3, "mxnet": 210.0, "onnxruntime": 300.0})
    assert run["gemm_peak_gflops"] == 386.0 and run["peak_from"] == "bort b1 (onnxruntime)"
    fp32 = [r for section in ("models", "onnxruntime") for m in run[section].values()
            for r in m.values() if isinstance(r, dict)]
    assert max(r["fraction_of_peak"] for r in fp32) == 1.0
    assert run["int8"]["bort"]["b1"]["fraction_of_peak"] == pytest.approx(355.0 / 386.0)


def test_reported_percentages_of_peak_are_at_most_100():
    """What timing.md prints: every fp32 "% of peak" (the MXNet table, the ONNX Runtime lines)."""
    for onnxruntime in (180.0, 386.0, 1000.0):
        run = synthetic_run(bort_onnxruntime=onnxruntime)
        timing.set_peak(run, {"numpy": 240.3, "mxnet": 210.0, "onnxruntime": 300.0})
        text = report_architecture.timing_markdown(run)
        table = [line.split("|")[1:-1] for line in text.splitlines() if re.search(r"\| ⟨\d", line)]
        shown = [float(cells[k]) for cells in table for k in (6, 10)]          # B1, B8 "% of peak"
        shown += [float(p) for p in re.findall(r"(\d+)% of peak\)", text)]
        assert len(shown) == 5 and max(shown) <= 100, text
        assert f"**{run['gemm_peak_gflops']:.1f} GFLOP/s**" in text and "ONNX Runtime (MLAS) 300.0" in text


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
