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
    """Two panels, effective parameters vs error and FLOPs vs error; front joined, ξ* starred."""
    trained = [c for c in result.candidates if c.error is not None]
    front = sorted(result.front, key=lambda c: c.params)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, key, label in ((axes[0], "params", "effective parameters p(ξ)"),
                           (axes[1], "flops", "FLOPs per sequence i(ξ)")):
        ax.scatter([getattr(c, key) for c in trained], [c.error for c in trained], s=14, c="#999999",
                   label="trained candidates")
        ax.scatter([getattr(c, key) for c in front], [c.error for c in front], s=22, c="#1f77b4",
                   label="Pareto front (p, i, e)")
        ax.scatter([getattr(result.best, key)], [result.best.error], s=160, marker="*", c="#d62728",
                   label=f"chosen {result.best.arch}")
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("surrogate error e(ξ) (held-out distillation loss)")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"FPTAS ({result.mode}, ε={result.eps}): trained {result.trained} of "
                 f"{len(result.candidates)} candidates")
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
