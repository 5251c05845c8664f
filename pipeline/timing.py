"""Stage `time`: CPU (and, when present, GPU) inference latency of BERT vs Bort, in one run.

Writes metrics/timing.json -- non-deterministic by nature, so it lives in its own file -- and
reports/timing.png. Named timing.py, not time.py, so that it does not shadow the standard
library's `time` module when run as a script.
"""
import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tqdm import tqdm                                                          # noqa: E402

from bort import params, plots, timing                                        # noqa: E402
from bort.arch import Arch                                                    # noqa: E402
from bort.errors import BortError, cli_main, setup_logging                    # noqa: E402
from bort.io import write_json                                                # noqa: E402

log = logging.getLogger("time")
SCHEMA = {"batch_sizes": list, "seq_len": int, "warmup": int, "min_repeats": int, "max_repeats": int,
          "budget_s": float, "gemm_size": int, "models": dict, "onnx_models": list, "onnx_threads": int,
          "int8_models": list}


def architectures(p) -> dict:
    """Paper-scale architectures from params, plus the embedded source and extracted student."""
    archs = {}
    for name, spec in p["models"].items():
        if not (isinstance(spec, list) and len(spec) == 5 and all(isinstance(v, int) for v in spec)):
            raise BortError(f"params.yaml: key time.models.{name}: expected [D, A, H, I, vocab_size], got {spec!r}")
        archs[name] = Arch(*spec[:4], vocab_size=spec[4])
    source = json.loads(Path("models/teacher/arch.json").read_text())
    archs["embedded_source"] = Arch.from_dict({k: source[k] for k in Arch.__dataclass_fields__})
    chosen = json.loads(Path("metrics/extract.json").read_text())["chosen"]["arch"]
    archs["embedded_student"] = Arch(*chosen, vocab_size=archs["embedded_source"].vocab_size)
    return archs


def main(argv=None) -> int:
    setup_logging()
    p = params.section("time", SCHEMA)
    archs = architectures(p)
    for key in ("onnx_models", "int8_models"):
        for name in p[key]:
            if name not in archs:
                raise BortError(f"params.yaml: key time.{key}: unknown model {name!r}; expected one of {sorted(archs)}")
    peak = timing.gemm_peak_gflops(p["gemm_size"])
    log.info("dense fp32 GEMM rate: %.1f GFLOP/s", peak)
    result = {"machine": timing.machine(), "gemm_peak_gflops": peak, "seq_len": p["seq_len"], "models": {},
              "onnxruntime": {}}
    jobs = [(n, b) for n in archs for b in p["batch_sizes"]]
    for name, batch in tqdm(jobs, desc="time (mxnet cpu)", file=sys.stderr):
        arch = archs[name]
        entry = result["models"].setdefault(name, {"arch": list(arch.tuple), "vocab_size": arch.vocab_size,
                                                   "effective_params": arch.effective_params,
                                                   "total_params": arch.total_params,
                                                   "flops_per_seq": arch.flops_per_seq(p["seq_len"])})
        entry[f"b{batch}"] = timing.time_mxnet(arch, batch, p["seq_len"], p, peak)
        log.info("%-18s b%-2d p50 %9.2f ms  %6.1f GFLOP/s (%.0f%% of GEMM peak)", name, batch,
                 entry[f"b{batch}"]["p50_ms"], entry[f"b{batch}"]["gflops"], 100 * entry[f"b{batch}"]["fraction_of_peak"])
    for name in p["onnx_models"]:
        model = timing.random_model(archs[name])
        for batch in p["batch_sizes"]:
            ort = timing.time_onnxruntime(archs[name], model, batch, p["seq_len"], p, peak, p["onnx_threads"])
            ort["mxnet_over_onnxruntime"] = result["models"][name][f"b{batch}"]["p50_ms"] / ort["p50_ms"]
            result["onnxruntime"].setdefault(name, {})[f"b{batch}"] = ort
            log.info("%-18s b%-2d onnxruntime p50 %8.2f ms; MXNet/ORT %.2f; max |diff| %.1e", name, batch,
                     ort["p50_ms"], ort["mxnet_over_onnxruntime"], ort["max_abs_diff_vs_mxnet"])
    result["int8"] = {}
    for name in p["int8_models"]:                      # "make Bort fast": oneDNN int8 dense layers
        model = timing.random_model(archs[name])
        for batch in p["batch_sizes"]:
            q = timing.time_int8(archs[name], model, batch, p["seq_len"], p, peak)
            q["fp32_over_int8"] = result["models"][name][f"b{batch}"]["p50_ms"] / q["p50_ms"]
            result["int8"].setdefault(name, {})[f"b{batch}"] = q
            log.info("%-18s b%-2d int8 p50 %8.2f ms; fp32/int8 %.2f; %.0f%% of fp32 GEMM peak; max |diff| %.3f of %.2f",
                     name, batch, q["p50_ms"], q["fp32_over_int8"], 100 * q["fraction_of_peak"],
                     q["max_abs_diff_vs_fp32"], q["max_abs_fp32_output"])
    models = result["models"]
    result["speedup"] = {f"bort_vs_{ref}": {f"b{b}": models[ref][f"b{b}"]["p50_ms"] / models["bort"][f"b{b}"]["p50_ms"]
                                            for b in p["batch_sizes"]}
                         for ref in ("bert_large", "bert_base") if ref in models and "bort" in models}
    if "embedded_source" in models:
        result["speedup"]["embedded_student_vs_source"] = {
            f"b{b}": models["embedded_source"][f"b{b}"]["p50_ms"] / models["embedded_student"][f"b{b}"]["p50_ms"]
            for b in p["batch_sizes"]}
    result["gpu"] = time_gpu(archs, p, peak=None) if timing.gpu_count() > 0 else "skipped: no GPU"
    for key, ratios in result["speedup"].items():
        log.info("speedup %s: %s", key, ", ".join(f"{b} {r:.1f}x" for b, r in ratios.items()))
    write_json("metrics/timing.json", result, digits=9)       # keeps ~1e-6 output differences
    plots.timing(result, "reports/timing.png")
    return 0


def time_gpu(archs, p, peak):
    import mxnet as mx
    out = {"device": "gpu(0)", "models": {}}
    for name, arch in archs.items():
        model = timing.random_model(arch, mx.gpu(0))
        out["models"][name] = {f"b{b}": timing.time_mxnet(arch, b, p["seq_len"], p, peak, mx.gpu(0), model)
                               for b in p["batch_sizes"]}
    m = out["models"]
    out["speedup"] = {f"bort_vs_{ref}": {f"b{b}": m[ref][f"b{b}"]["p50_ms"] / m["bort"][f"b{b}"]["p50_ms"]
                                         for b in p["batch_sizes"]} for ref in ("bert_large", "bert_base")
                      if ref in m and "bort" in m}
    return out


if __name__ == "__main__":
    sys.exit(cli_main(main))
