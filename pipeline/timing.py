"""Stage `time`: CPU (and, on a GPU `device`, GPU) inference latency of BERT vs Bort, in one run.

Writes the timing metrics -- non-deterministic by nature, so they live in their own file -- and
their figure. Named timing.py, not time.py, so that it does not shadow the standard library's
`time` module when run as a script. The MXNet rows are CPU fp32 (the papers' claim; ONNX Runtime
and int8 compare with them); when params.yaml `device` starts with a GPU context (bort.device),
the models are also timed there (`gpu`); `device` records the setting.

  python pipeline/timing.py --teacher-arch models/teacher/arch.json --extract metrics/extract.json \
      --metrics metrics/timing.json --plot reports/timing.png
"""
import logging
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tqdm import tqdm                                                          # noqa: E402

from bort import cli, device, plots, timing                                   # noqa: E402
from bort.arch import Arch, read_student                                      # noqa: E402
from bort.errors import cli_main, setup_logging                               # noqa: E402
from bort.io import write_json                                                # noqa: E402

log = logging.getLogger("time")


def main(argv=None) -> int:
    args = cli.parser(__doc__, {"teacher-arch": "the source's arch.json",
                                "extract": "the extract stage's metrics (ξ*)", "metrics": "output: latencies (JSON)",
                                "plot": "output: latencies (PNG)"}).parse_args(argv)
    setup_logging()
    cfg = timing.TimeConfig.load("time")
    contexts = device.contexts()
    ctx = contexts[0]                              # inference: the first context
    archs = cfg.architectures(Arch.read(args.teacher_arch), read_student(args.extract, args.teacher_arch))
    p = asdict(cfg)
    gemm = timing.gemm_rates(cfg.gemm_size, onnx_threads=cfg.onnx_threads)
    log.info("fp32 GEMM, GFLOP/s: %s", ", ".join(f"{engine} {rate:.1f}" for engine, rate in gemm.items()))
    result = {"machine": timing.machine(), "seq_len": cfg.seq_len, "models": {}, "onnxruntime": {},
              "device": device.label(contexts)}
    jobs = [(n, b) for n in archs for b in cfg.batch_sizes]
    for name, batch in tqdm(jobs, desc="time (mxnet cpu(0))", file=sys.stderr):
        arch = archs[name]
        entry = result["models"].setdefault(name, {"arch": list(arch.tuple), "vocab_size": arch.vocab_size,
                                                   "effective_params": arch.effective_params,
                                                   "total_params": arch.total_params,
                                                   "flops_per_seq": arch.flops_per_seq(cfg.seq_len)})
        entry[f"b{batch}"] = timing.time_mxnet(arch, batch, cfg.seq_len, p)
        log.info("%-18s b%-2d p50 %9.2f ms  %6.1f GFLOP/s", name, batch,
                 entry[f"b{batch}"]["p50_ms"], entry[f"b{batch}"]["gflops"])
    for name in cfg.onnx_models:
        model = timing.random_model(archs[name])
        for batch in cfg.batch_sizes:
            ort = timing.time_onnxruntime(archs[name], model, batch, cfg.seq_len, p, cfg.onnx_threads)
            ort["mxnet_over_onnxruntime"] = result["models"][name][f"b{batch}"]["p50_ms"] / ort["p50_ms"]
            result["onnxruntime"].setdefault(name, {})[f"b{batch}"] = ort
            log.info("%-18s b%-2d onnxruntime p50 %8.2f ms; MXNet/ORT %.2f; max |diff| %.1e", name, batch,
                     ort["p50_ms"], ort["mxnet_over_onnxruntime"], ort["max_abs_diff_vs_mxnet"])
    result["int8"] = {}
    for name in cfg.int8_models:                       # "make Bort fast": oneDNN int8 dense layers
        model = timing.random_model(archs[name])
        for batch in cfg.batch_sizes:
            q = timing.time_int8(archs[name], model, batch, cfg.seq_len, p)
            q["fp32_over_int8"] = result["models"][name][f"b{batch}"]["p50_ms"] / q["p50_ms"]
            result["int8"].setdefault(name, {})[f"b{batch}"] = q
            log.info("%-18s b%-2d int8 p50 %8.2f ms; fp32/int8 %.2f; max |diff| %.3f of %.2f", name, batch,
                     q["p50_ms"], q["fp32_over_int8"], q["max_abs_diff_vs_fp32"], q["max_abs_fp32_output"])
    timing.set_peak(result, gemm)                      # from every fp32 rate of this run
    log.info("fp32 peak: %.1f GFLOP/s (%s)", result["gemm_peak_gflops"], result["peak_from"])
    models = result["models"]
    result["speedup"] = {f"bort_vs_{ref}": {f"b{b}": models[ref][f"b{b}"]["p50_ms"] / models["bort"][f"b{b}"]["p50_ms"]
                                            for b in cfg.batch_sizes}
                         for ref in ("bert_large", "bert_base") if ref in models and "bort" in models}
    result["speedup"]["embedded_student_vs_source"] = {
        f"b{b}": models["embedded_source"][f"b{b}"]["p50_ms"] / models["embedded_student"][f"b{b}"]["p50_ms"]
        for b in cfg.batch_sizes}
    result["gpu"] = time_gpu(archs, cfg, p, ctx) if device.uses_gpu([ctx]) else f"skipped: device {ctx}"
    for key, ratios in result["speedup"].items():
        log.info("speedup %s: %s", key, ", ".join(f"{b} {r:.1f}x" for b, r in ratios.items()))
    write_json(args.metrics, result, digits=9)       # keeps ~1e-6 output differences
    plots.timing(result, args.plot)
    return 0


def time_gpu(archs, cfg, p, ctx):
    """The same models on the GPU context `ctx` (params.yaml `device`, bort.device), fp32."""
    out = {"device": str(ctx), "models": {}}
    for name, arch in tqdm(archs.items(), desc=f"time (mxnet {ctx})", file=sys.stderr):
        model = timing.random_model(arch, ctx)
        out["models"][name] = {f"b{b}": timing.time_mxnet(arch, b, cfg.seq_len, p, ctx, model)
                               for b in cfg.batch_sizes}
    m = out["models"]
    out["speedup"] = {f"bort_vs_{ref}": {f"b{b}": m[ref][f"b{b}"]["p50_ms"] / m["bort"][f"b{b}"]["p50_ms"]
                                         for b in cfg.batch_sizes} for ref in ("bert_large", "bert_base")
                      if ref in m and "bort" in m}
    return out


if __name__ == "__main__":
    sys.exit(cli_main(main))
