"""Matplotlib figures for reports/ (PNG): the Pareto front and the latencies; the same data also goes
to CSV or JSON for `dvc plots`. The task-score figure is the report's (bort.report.scores_figure)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

METADATA = {"Software": None}     # no version stamp: the same data gives the same bytes


def save(fig, path) -> None:
    """Write a figure as PNG without a version stamp and close it."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata=METADATA)
    plt.close(fig)


def pareto(result, path) -> None:
    """Two panels, size p vs error and cost i vs error at s(ε), for every candidate (a
    bort.extraction.Result); the Pareto front over (p, i, e) in colour, ξ* for each ε marked."""
    s = result.steps
    front = {id(c) for c in result.front}
    markers = ["*", "P", "X", "D"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    for ax, key, label in ((axes[0], "params", "parameter size p(ξ)"), (axes[1], "flops", "inference cost i(ξ), FLOPs")):
        rest = [c for c in result.candidates if id(c) not in front]
        ax.scatter([getattr(c, key) for c in rest], [c.error(s) for c in rest], s=12, c="#aaaaaa",
                   label=f"dominated ({len(rest)})")
        ax.scatter([getattr(c, key) for c in result.front], [c.error(s) for c in result.front], s=22, c="#1f77b4",
                   label=f"Pareto front over (p, i, e) ({len(result.front)})")
        for k, choice in enumerate(result.choices):
            ax.scatter([getattr(choice.best, key)], [choice.best.error(s)], s=150 if k == 0 else 70,
                       marker=markers[k % len(markers)], c="#d62728" if k == 0 else "#ff7f0e", edgecolors="black",
                       linewidths=0.5, label=f"ξ* at ε = {choice.eps} (chosen at {choice.steps} steps): "
                                             f"⟨{', '.join(map(str, choice.best.point))}⟩")
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"error e(ξ) after s(ε) = {s} steps (best θ)")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Extraction ({result.family}): every one of {len(result.candidates)} candidates × "
                 f"{len(result.thetas)} θ trained; W = (1 − p/p_T)(1 − i/i_T)/e maximised", fontsize=10)
    fig.tight_layout()
    save(fig, path)


def timing(result, path) -> None:
    """Latency bars per model and batch size, log scale, from metrics/timing.json's layout."""
    import numpy as np
    models = list(result["models"])
    batches = sorted({k for m in result["models"].values() for k in m if k.startswith("b") and k[1:].isdigit()},
                     key=lambda b: int(b[1:]))
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / len(batches)
    for k, batch in enumerate(batches):
        values = [result["models"][m][batch]["p50_ms"] for m in models]
        bars = ax.bar(np.arange(len(models)) + k * width, values, width, label=f"batch {batch[1:]} (p50)")
        for bar, value in zip(bars, values):
            ax.annotate(f"{value:.0f}" if value >= 10 else f"{value:.1f}", (bar.get_x() + bar.get_width() / 2, value),
                        ha="center", va="bottom", fontsize=7)
    ax.set_xticks(np.arange(len(models)) + width * (len(batches) - 1) / 2)
    ax.set_xticklabels([f"{m}\n⟨{', '.join(map(str, result['models'][m]['arch']))}⟩" for m in models], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel(f"latency per batch, ms (seq len {result['seq_len']})")
    ax.set_title(f"MXNet CPU inference, fp32; GEMM peak {result['gemm_peak_gflops']:.0f} GFLOP/s "
                 f"({result['machine']['cpu']}, {result['machine']['logical_cores']} cores)", fontsize=9)
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    save(fig, path)
