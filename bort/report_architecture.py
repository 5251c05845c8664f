"""The report's tables about the architectures rather than their task scores: what each model is
(published vs counted sizes), how the extraction chose the student (ξ* per ε, the Pareto front),
and how fast each runs (reports/timing.md, its own file because times are never byte-identical).

Split from bort.report, which keeps the task scores; both read only metrics files.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import List, Optional

from bort.arch import Arch, ROBERTA_VOCAB
from bort.report import to_markdown

#: the engines whose fp32 GEMM rates bound the timing's peak (bort.timing.gemm_rates)
ENGINES = {"numpy": "numpy (OpenBLAS)", "mxnet": "MXNet (oneDNN)", "onnxruntime": "ONNX Runtime (MLAS)"}
#: alexa/bort README -- published sizes: total parameters, embedding parameters, encoder share
PUBLISHED_ARCH = {"BERT-large": ("340M", "31.8M", "90.6%"), "Bort": ("56M", "39M", "30.3%")}

# ---------------------------------------------------------------------------------------------
# architectures
# ---------------------------------------------------------------------------------------------

def architecture_rows(source: Arch, student: Optional[Arch], seq_len: int = 128):
    entries = [("BERT-large", Arch(24, 16, 1024, 4096), "BERT-large"),
               ("BERT-base", Arch(12, 12, 768, 3072), None),
               ("Bort ⟨4, 8, 1024, 768⟩ (as released: alexa/bort builds units=1024, hidden_size=768; "
                "the author confirms it in alexa/bort issue 3)", Arch(4, 8, 1024, 768, vocab_size=ROBERTA_VOCAB), "Bort"),
               ("⟨4, 8, 768, 1024⟩ (H and I swapped: the only reading that reproduces the published counts)",
                Arch(4, 8, 768, 1024, vocab_size=ROBERTA_VOCAB), "Bort"),
               ("embedded source (MiniLM-L6-H384)", source, None)]
    if student is not None:
        entries.append(("embedded student (extracted)", student, None))
    rows = []
    for name, arch, published in entries:
        pub = PUBLISHED_ARCH.get(published, ("", "", ""))
        rows.append([name, *arch.tuple, arch.vocab_size, f"{arch.total_params / 1e6:.2f}M",
                     f"{arch.embedding_params / 1e6:.2f}M", f"{arch.effective_params / 1e6:.2f}M",
                     f"{100 * arch.effective_params / arch.total_params:.1f}%",
                     f"{arch.flops_per_seq(seq_len) / 1e9:.2f}", *pub])
    header = ["model", "D", "A", "H", "I", "vocab", "total (counted)", "embedding (counted)",
              "effective (counted)", "encoder share (counted)", f"GFLOP/seq (L={seq_len})",
              "total (published)", "embedding (published)", "encoder share (published)"]
    return header, rows



# ---------------------------------------------------------------------------------------------
# the extraction: the Pareto front and ξ*
# ---------------------------------------------------------------------------------------------

def front_rows(candidates_csv: Path):
    """The Pareto front's members from the extraction's candidate table (bort.extraction.rows)."""
    header = ["D", "A", "H", "I", "effective params p", "GFLOP/seq i", "e at s", "e at 2s", "best θ", "W", "ξ*"]
    rows = []
    if not candidates_csv.exists():
        return header, rows
    with open(candidates_csv) as handle:
        for row in csv.DictReader(handle):
            if row["on_front"] == "1":
                rows.append([row["depth"], row["num_heads"], row["hidden_size"], row["intermediate_size"],
                             row["params"], f'{int(row["flops"]) / 1e9:.3f}', row["error"], row["error_2s"],
                             row["theta"], row["w"], "★" if row["chosen"] == "1" else ""])
    rows.sort(key=lambda r: (int(r[4]), float(r[5])))
    return header, rows


def extraction_section(extract: dict, front_header: List[str], front_rows_: List[List]) -> List[str]:
    """The report's extraction section from metrics/extract.json and the front's rows: the
    published W, the work done, ξ* for every ε, the rank stability and the front (its size)."""
    def arch(values):
        return "⟨" + ", ".join(map(str, values)) + "⟩"
    thetas = ", ".join(" ".join(f"{k} {v}" for k, v in sorted(t.items())) for t in extract["thetas"])
    by_eps = [[row["eps"], row["interval"], arch(row["arch"]), f"{row['error']:.4f}", f"{row['w']:.4f}"]
              for row in sorted(extract["by_eps"], key=lambda r: -r["eps"])]
    return ["## Extraction", "",
            "The W-coefficient of the FPTAS paper (arXiv 2010.08512, Definition 8), maximised: "
            "W(ξ) = (1 − p(ξ)/p_T) · (1 − i(ξ)/i_T) / e(ξ), T the space's largest point "
            f"(p_T = {extract['p_top']:,} effective parameters, "
            f"i_T = {extract['i_top'] / 1e9:.3f} GFLOP per sequence of {extract['seq_len']} tokens). "
            f"Every one of the {extract['grid_candidates']} candidates was trained under every θ of Θ = {{{thetas}}} "
            f"({extract['trainings']} runs, initialised from the teacher {'head-aware' if extract['init'] == 'teacher' else 'at random'}) "
            f"for s(ε) = {extract['interval']} distillation steps and on to 2s = {extract['interval_2s']}; "
            "the best θ per candidate is kept. e = held-out distillation loss, normalised so that 1.0 is the "
            "teacher's mean state.", "",
            f"Rank stability: Spearman correlation of e at s and at 2s over all {extract['grid_candidates']} "
            f"candidates **{extract['rank_stability_spearman']:.3f}**.", "",
            "ξ* for each ε (s(ε) = ceil(steps_per_unit_eps / ε); each read from the same runs):", "",
            to_markdown(["ε", "interval s(ε), steps", "ξ*", "e(ξ*) at s(ε)", "W(ξ*)"], by_eps), "",
            f"The Pareto front over (p, i, e at s): **{extract['front_size']} of {extract['grid_candidates']}** "
            "candidates (all in reports/candidates.csv).", "",
            to_markdown(front_header, front_rows_), "", "![Pareto front](pareto.png)", ""]


# ---------------------------------------------------------------------------------------------
# timing (its own file)
# ---------------------------------------------------------------------------------------------

def timing_markdown(timing: Optional[dict]) -> str:
    return "\n".join(timing_lines(timing))


def timing_lines(timing: Optional[dict]) -> List[str]:
    """timing.md as a list of lines and tables (bort.report.Table), which report.html renders too."""
    if not timing:
        return ["# Timing", "", "No metrics/timing.json yet: run `dvc repro time`.", ""]
    machine = timing["machine"]
    lines = ["# Timing: CPU inference, BERT vs Bort (one run)", "",
             f"Measured by the `time` stage on {machine['cpu']} ({machine['logical_cores']} logical cores), "
             f"MXNet {machine['mxnet']} (oneDNN {'on' if machine['mxnet_onednn'] else 'off'}), GluonNLP "
             f"{machine['gluonnlp']}, ONNX Runtime {machine['onnxruntime']}; fp32, sequence length "
             f"{timing['seq_len']}, random weights (cost does not depend on them), warm-up excluded. "
             f"Peak (what % of peak divides by): **{timing['gemm_peak_gflops']:.1f} GFLOP/s**, the best fp32 rate "
             f"of this run, set by {timing['peak_from']}; fp32 GEMM: "
             + ", ".join(f"{ENGINES[e]} {rate:.1f}" for e, rate in timing["gemm_gflops"].items()) + " GFLOP/s.", ""]
    batches = sorted({k for m in timing["models"].values() for k in m if k.startswith("b") and k[1:].isdigit()},
                     key=lambda b: int(b[1:]))
    header = ["model", "⟨D, A, H, I⟩", "GFLOP/seq"] + [f"{b.upper()} {c}" for b in batches
                                                      for c in ("p50 ms", "p90 ms", "GFLOP/s", "% of peak")]
    rows = []
    for name, m in timing["models"].items():
        row = [name, "⟨" + ", ".join(map(str, m["arch"])) + "⟩", f"{m['flops_per_seq'] / 1e9:.2f}"]
        for b in batches:
            t = m[b]
            row += [f"{t['p50_ms']:.1f}", f"{t['p90_ms']:.1f}", f"{t['gflops']:.1f}", f"{100 * t['fraction_of_peak']:.0f}"]
        rows.append(row)
    lines += [to_markdown(header, rows), "", "![CPU latency per model and batch size](timing.png)", "",
              "Speed-ups (ratio of p50 latencies, same run):", ""]
    for key, ratios in timing.get("speedup", {}).items():
        lines.append(f"- {key}: " + ", ".join(f"{b.upper()} {r:.1f}x" for b, r in ratios.items()))
    lines += ["", "Published: Bort is 7.9x faster than BERT-base on a CPU (paper), about 20x faster than "
              "BERT-large (blog).", ""]
    if timing.get("onnxruntime"):
        lines += ["ONNX Runtime on the same graph and weights (MXNet p50 / ONNX Runtime p50; > 1 means ONNX "
                  "Runtime is faster):", ""]
        for name, per_batch in timing["onnxruntime"].items():
            lines.append(f"- {name}: " + ", ".join(
                f"{b.upper()} {r['p50_ms']:.1f} ms ({100 * r['fraction_of_peak']:.0f}% of peak), ratio "
                f"{r['mxnet_over_onnxruntime']:.2f}, max |diff| "
                f"{r['max_abs_diff_vs_mxnet']:.1e}" for b, r in per_batch.items()))
    if timing.get("int8"):
        lines += ["", "Making Bort fast: the dense layers in int8 through oneDNN (`bort.quantize`; the self-attention "
                  "matmuls, embeddings and pooler stay fp32). GFLOP/s and % of peak count the fp32 FLOPs, so they "
                  "compare with the fp32 rows above (int8 may pass 100% of the fp32 peak); the accuracy cost on "
                  "fine-tuned students is in report.md.", ""]
        header = ["model", "batch", "fp32 p50 ms", "int8 p50 ms", "fp32 / int8", "fp32 % of peak", "int8 % of fp32 peak",
                  "ONNX Runtime fp32 p50 ms", "int8 / ONNX Runtime", "max |int8 - fp32| (max |fp32|)"]
        rows = []
        for name, per_batch in timing["int8"].items():
            for b, q in per_batch.items():
                f32 = timing["models"][name][b]
                ort = timing.get("onnxruntime", {}).get(name, {}).get(b)
                peer = [f"{ort['p50_ms']:.1f}", f"{q['p50_ms'] / ort['p50_ms']:.2f}"] if ort else ["", ""]
                rows.append([name, b[1:], f"{f32['p50_ms']:.1f}", f"{q['p50_ms']:.1f}", f"{q['fp32_over_int8']:.2f}x",
                             f"{100 * f32['fraction_of_peak']:.0f}%", f"{100 * q['fraction_of_peak']:.0f}%", *peer,
                             f"{q['max_abs_diff_vs_fp32']:.3f} ({q['max_abs_fp32_output']:.2f})"])
        lines.append(to_markdown(header, rows))
    gpu = timing.get("gpu")
    lines += ["", f"GPU: {gpu if isinstance(gpu, str) else 'timed on ' + gpu['device']}", ""]
    return lines
