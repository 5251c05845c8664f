"""Matplotlib figures for reports/ (PNG); the same data also goes to CSV for `dvc plots`."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

METADATA = {"Software": None}     # no version stamp: the same data gives the same bytes


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
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata=METADATA)
    plt.close(fig)
