"""The BERT-versus-Bort task-score tables, regenerated from metrics/ (what users publish).

Every table says what each number was measured on. The deterministic tables go to
reports/report.md and one CSV each: the task scores with their spread, intervals and marks, the
suite scores seed by seed, the Agora rounds and Bort in int8 here; the architectures, the
extraction and timing (its own reports/timing.md, never byte-identical) in bort.report_architecture.
Suite averages follow the leaderboards: a task's score is the mean of its metrics; the GLUE score
averages the ten GLUE tasks without AX, the SuperGLUE score the eight tasks without AX-b and AX-g;
RACE is reported per level and as their mean. Published numbers stand beside ours, marked as
published: they are test-server scores at paper scale (the companion code's README, alexa/bort),
ours are embedded-scale held-out scores.
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from bort import tasks as T
from bort.errors import BortError
from bort.finetune import MODELS
from bort.metrics import task_score

MODEL_NAMES = {"bert": "BERT (source, fine-tuned)", "bort": "Bort (student)", "bort-agora": "Bort + Agora"}

#: alexa/bort README -- published test scores, Bort then BERT-large, in the leaderboard's format
PUBLISHED = {
    "CoLA": ("63.9", "60.5"), "SST-2": ("96.2", "94.9"), "MRPC": ("94.1/92.3", "89.3/85.4"),
    "STS-B": ("89.2/88.3", "87.6/86.5"), "QQP": ("66.0/85.9", "72.1/89.3"), "MNLI-m": ("88.1", "86.7"),
    "MNLI-mm": ("87.8", "85.9"), "QNLI": ("92.3", "92.7"), "RTE": ("82.7", "70.1"), "WNLI": ("71.2", "65.1"),
    "AX": ("51.9", "39.6"), "BoolQ": ("83.7", "77.4"), "CB": ("81.9/86.5", "75.7/83.6"), "COPA": ("89.6", "70.6"),
    "MultiRC": ("83.7/54.1", "70.0/24.1"), "ReCoRD": ("49.8/49.0", "72.0/71.3"), "SuperGLUE-RTE": ("81.2", "71.7"),
    "WiC": ("70.1", "69.6"), "WSC": ("65.8", "64.4"), "AX-b": ("48.0", "23.0"), "AX-g": ("96.1/61.5", "97.8/51.7"),
}
PUBLISHED_SUITES = {"glue": ("83.6", "80.5"), "superglue": ("74.1", "69.0")}


def load_json(path) -> Optional[dict]:
    path = Path(path)
    return json.loads(path.read_text()) if path.exists() else None


def pct(value: Optional[float]) -> str:
    return "" if value is None else f"{100 * value:.1f}"


class Table(str):
    """A table's Markdown that keeps its cells (`header`, `rows`), so that report.html renders
    the same data as report.md without reading Markdown back (bort.report_html)."""
    header: List[str]
    rows: List[List[str]]


def to_markdown(header: List[str], rows: List[List]) -> Table:
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"
    table = Table("\n".join([line(header), "|" + "---|" * len(header)] + [line(row) for row in rows]))
    table.header, table.rows = [str(c) for c in header], [[str(c) for c in row] for row in rows]
    return table


# ---------------------------------------------------------------------------------------------
# task scores
# ---------------------------------------------------------------------------------------------

#: the paired tests of bort.significance: which cell carries the mark, and the mark
MARKS = {"bert_vs_bort": ("bort", "†"), "agora_vs_bort": ("bort-agora", "*")}


def task_rows(suite: str, finetune: Dict[str, Dict[str, dict]], floor: Dict[str, dict], names: Sequence[str],
              significance: Optional[dict] = None):
    """One row per task of `suite` among `names`, then the suite score: the mean task score over
    all of the suite's tasks with training data (the leaderboards leave the diagnostic sets out),
    left blank unless every one of them has a score. A model's cell is its metrics averaged over
    seeds, then -- with the significance stage's record -- the spread over seeds (±, sample sd of
    the task score) and the bootstrap interval of the task score; Bort's cell is marked † where
    it differs significantly from BERT's, Bort + Agora's * where it differs from Bort's; a model
    that predicts one class for every held-out instance is flagged (degenerate)."""
    significance = significance or {}
    header = ["task", "metric(s)", "measured on", "TF-IDF floor"] + [MODEL_NAMES[m] for m in MODELS] + \
             ["published Bort (test)", "published BERT-large (test)"]
    rows, averages = [], {k: [] for k in ("floor",) + MODELS}
    shown = T.suite_tasks(suite, names)
    for task in shown:
        name = task.name
        measured = next((f'{finetune[m][name]["heldout"]}, n = {finetune[m][name]["heldout_examples"]}'
                         for m in MODELS if name in finetune.get(m, {})), "")
        cells = []
        fl = floor.get(name)
        cells.append(_fmt(task, fl))
        if fl and not task.is_diagnostic:
            averages["floor"].append(task_score(task, fl))
        record = significance.get("tasks", {}).get(name, {})
        for m in MODELS:
            result = finetune.get(m, {}).get(name)
            cells.append(_cell(task, result) + _uncertainty(result, record, m))
            if result and not task.is_diagnostic:
                averages[m].append(result["task_score"])
        scores = [finetune.get(m, {}).get(name, {}).get("task_score") for m in MODELS]
        if fl and all(s is not None for s in scores) and task_score(task, fl) > max(scores):
            cells[0] += " ‡"                         # the floor beats every model: a defect to explain
        published = PUBLISHED.get(name, ("", ""))
        rows.append([task.label, "/".join(task.metrics), measured, *cells, *published])
    n_tasks = sum(1 for t in T.suite_tasks(suite) if not t.is_diagnostic)
    n_shown = sum(1 for t in shown if not t.is_diagnostic)
    if 0 < n_shown < n_tasks:                    # a subset: its mean, never called the suite score
        subset_row = [f"mean of the {n_shown} tasks shown", "mean of task scores", "not the suite score"]
        for k in ("floor",) + MODELS:
            values = averages[k]
            subset_row.append(f"{100 * sum(values) / len(values):.1f}" if len(values) == n_shown else "")
        rows.append(subset_row + ["", ""])
    score_row = [f"**{suite_label(suite)} score**", "mean of task scores", f"{n_tasks} tasks"]
    suite_record = significance.get("suites", {}).get(suite, {})
    for k in ("floor",) + MODELS:
        values = averages[k]
        whole = values and len(values) == n_tasks
        cell = f"{100 * sum(values) / len(values):.1f}" if whole else ""
        if whole and k in suite_record and len(suite_record["tasks"]) == n_tasks:
            cell += _uncertainty(None, suite_record, k)
        score_row.append(cell)
    score_row += list(PUBLISHED_SUITES.get(suite, ("", "")))
    rows.append(score_row)
    return header, rows


def seed_rows(finetune: Dict[str, Dict[str, dict]], names: Sequence[str]):
    """Each suite score seed by seed (the mean over the suite's tasks of that seed's task scores),
    for each model: which conclusions hold in every seed. A suite is shown when all its tasks are
    among `names`; a model's row when it has runs on every one of them."""
    seeds = sorted({s for m in finetune.values() for r in m.values() for s in r.get("seeds", [])})
    header = ["suite", "model"] + [f"seed {s}" for s in seeds] + ["mean", "sd over seeds"]
    rows = []
    for suite in T.SUITES:
        members = [t for t in T.suite_tasks(suite) if not t.is_diagnostic]
        if not members or any(t.name not in names for t in members):
            continue
        for m in MODELS:
            runs = [finetune.get(m, {}).get(t.name, {}).get("runs") for t in members]
            if any(not r for r in runs):
                continue
            by_seed = [sum(_seed_score(r, s, m) for r in runs) / len(runs) for s in seeds]
            mean, sd = statistics.mean(by_seed), statistics.stdev(by_seed) if len(by_seed) > 1 else 0.0
            rows.append([suite_label(suite), MODEL_NAMES[m], *[pct(v) for v in by_seed], pct(mean), pct(sd)])
    return header, rows


def _seed_score(runs: List[dict], seed: int, model: str) -> float:
    for run in runs:
        if run["seed"] == seed:
            return run["task_score"]
    raise BortError(f"metrics/finetune: {model} has no run with seed {seed}, expected every seed of "
                    "finetune.seeds (re-run `dvc repro`)")


def summary(finetune: Dict[str, Dict[str, dict]], significance: dict, names: Sequence[str]) -> dict:
    """metrics/summary.json: the scores a reader compares across runs, and nothing else (settings
    stay in params.yaml; the per-run records beside the runs are not declared as metrics, so
    `dvc metrics diff` and `dvc exp show` print measurements only). Per suite whose tasks all ran:
    each model's suite score (the mean of task scores, as the tables), top-level, so that
    `dvc exp show --only-changed --drop 'intervals|tests|tasks'` is one column per suite and model;
    the 95% intervals and the paired tests of the significance stage under `intervals` and
    `tests`; every task's score per model under `tasks`. Percentages."""
    from bort.significance import COMPARISONS
    out: dict = {"intervals": {}, "tests": {}, "tasks": {}}
    for suite in ("glue", "superglue", "race"):
        members = [t.name for t in T.suite_tasks(suite) if not t.is_diagnostic]
        scores = {m: [finetune.get(m, {}).get(n, {}).get("task_score") for n in members] for m in MODELS}
        ran = all(n in names or T.TASKS[n].scored_by in names for n in members)
        whole = {m: v for m, v in scores.items() if members and ran and None not in v}
        if not whole:
            continue
        out[suite] = {m: 100 * statistics.mean(v) for m, v in whole.items()}
        record = significance.get("suites", {}).get(suite, {})
        out["intervals"][suite] = {m: {"low": 100 * record[m]["low"], "high": 100 * record[m]["high"]}
                                   for m in whole if m in record}
        out["tests"][suite] = {key: {"difference": 100 * record[key]["difference"], "p_value": record[key]["p_value"]}
                               for key, _, _ in COMPARISONS if key in record}
    for name in [n for n in T.TASKS if n in names or T.TASKS[n].scored_by in names]:
        cells = {m: finetune.get(m, {}).get(name, {}).get("task_score") for m in MODELS}
        if any(v is not None for v in cells.values()):
            out["tasks"][name] = {m: 100 * v for m, v in cells.items() if v is not None}
    return out


def suite_label(suite: str) -> str:
    return T.SUITES[suite].label


def _fmt(task, metrics: Optional[dict]) -> str:
    if not metrics:
        return ""
    return "/".join(pct(metrics[m]) for m in task.metrics)


def _cell(task, result: Optional[dict]) -> str:
    """A model's cell: its scores, or what was done without labels (an unlabelled diagnostic set)."""
    if result and result["scores"] is None:
        return "unlabelled: submission only"
    return _fmt(task, result["scores"] if result else None)


def _uncertainty(result: Optional[dict], record: dict, model: str) -> str:
    """' ±sd [low, high]' (and the marks) for a cell from its metrics record (the spread over
    seeds) and its significance record (the interval; the paired tests; degenerate predictions)."""
    out = ""
    spread = (result or {}).get("seed_spread")
    if spread and len((result or {}).get("seeds", [])) > 1:
        out += f" ±{100 * spread['sd']:.1f}"
    ci = record.get(model)
    if ci:
        out += f" [{pct(ci['low'])}, {pct(ci['high'])}]"
    for key, (marked, mark) in MARKS.items():
        if marked == model and record.get(key, {}).get("significant"):
            out += mark
    if ci and ci.get("one_class"):
        out += " (one class)"
    return out


def degenerate_cells(significance: dict, finetune: Dict[str, Dict[str, dict]], floor: Dict[str, dict],
                     names: Sequence[str]) -> List[str]:
    """The report's list of cells that are a defect of the set-up until explained, each with the
    cause the metrics measure: a model whose every seed predicts one class (did it train? its last
    epoch's training loss against chance, ln of the label count; a diagnostic set is predicted by
    its parent's model), a model whose interval lies below what a uniform guess scores (`chance`),
    and a task where the TF-IDF floor beats every model (inside the best model's interval, or
    below it)."""
    lines = []
    for name in [n for n in T.TASKS if n in names]:
        task, record = T.TASKS[name], significance.get("tasks", {}).get(name, {})
        for model in [m for m in MODELS if record.get(m, {}).get("one_class")]:
            lines.append(f"{task.label}, {MODEL_NAMES[model]}: one class for every held-out instance in every seed; "
                         + _one_class_cause(task, finetune.get(model, {})))
        level = chance(task)
        for model in [m for m in MODELS if level is not None and record.get(m, {}).get("high", level) < level]:
            lines.append(f"{task.label}, {MODEL_NAMES[model]}: below chance -- its interval "
                         f"[{pct(record[model]['low'])}, {pct(record[model]['high'])}] lies under {pct(level)}, what a "
                         "uniform guess scores: its predictions run against the labels, a rule learned that the "
                         "held-out rows do not follow.")
        scores = {m: finetune.get(m, {}).get(name, {}).get("task_score") for m in MODELS}
        if name in floor and all(v is not None for v in scores.values()) and \
                task_score(task, floor[name]) > max(scores.values()):
            best = max(MODELS, key=lambda m: scores[m])
            low, high = record.get(best, {}).get("low"), record.get(best, {}).get("high")
            inside = low is not None and low <= task_score(task, floor[name]) <= high
            lines.append(f"{task.label}: the TF-IDF floor ({pct(task_score(task, floor[name]))}) beats every model; "
                         + (f"it lies inside the best model's interval ({MODEL_NAMES[best]}, [{pct(low)}, {pct(high)}]): "
                            "sampling noise, not a finding." if inside else
                            f"it lies above the best model's interval ({MODEL_NAMES[best]}, [{pct(low)}, {pct(high)}])."))
    return lines


def chance(task) -> Optional[float]:
    """What a uniform guess scores on `task`'s task score, where that is fixed: accuracy over k
    labels or options (1 / k), MCC (0); None for F1 and the other metrics, whose chance level
    depends on the label balance."""
    if task.metrics == ("mcc",):
        return 0.0
    if task.metrics == ("acc",):
        k = len(task.labels) if task.labels else {"race": 4, "copa": 2}.get(task.shape.name)
        return 1.0 / k if k else None
    return None


def _one_class_cause(task, runs_by_task: Dict[str, dict]) -> str:
    """What the training records say of a one-class cell: the model's (or its parent's) last
    epoch's training loss per seed, against the loss of a uniform guess."""
    import math
    trained = T.TASKS[task.scored_by] if task.scored_by else task
    result = runs_by_task.get(trained.name, {})
    losses = [r["epoch_losses"][-1] for r in result.get("runs", []) if r.get("epoch_losses")]
    rounds = [r["agora_rounds"] for r in result.get("runs", []) if r.get("agora_rounds")]
    if not losses and rounds:                   # Bort + Agora: its rounds on the acceptance half
        moves = ", ".join(f"{pct(seed[0].get('accept_before'))} -> {pct(seed[-1].get('accept_after'))} "
                          f"({sum(bool(r.get('accepted')) for r in seed)} of {len(seed)} rounds accepted)" for seed in rounds)
        where = f"on its parent {trained.label}'s acceptance half" if task.scored_by else "on the acceptance half"
        return (f"Agora's rounds moved the score {where} of Agora's dev split {moves} (seed by seed), and the "
                "model predicts one class here.")
    if not losses or trained.labels is None:
        return "no training record to say why."
    chance = math.log(len(trained.labels))
    where = f"its parent {trained.label}'s model" if task.scored_by else "the model"
    verdict = ("did not train" if min(losses) > 0.9 * chance else
               "trained, yet predicts one class here" + (": the set lies outside its parent's training data"
                                                         if task.scored_by else ""))
    return (f"{where} {verdict} (last-epoch training loss {', '.join(f'{v:.2f}' for v in losses)} "
            f"against {chance:.2f} for a uniform guess).")


def significance_counts(significance: dict, finetune: Dict[str, Dict[str, dict]], names: Sequence[str]) -> List[str]:
    """The report's sentences counting wins, and significant wins, over the scored tasks and sets."""
    if not significance:
        return []
    cfg = significance["config"]
    lines = []
    for key, a, b, text in (("agora_vs_bort", "bort-agora", "bort", "Bort + Agora beats Bort alone"),
                            ("bert_vs_bort", "bert", "bort", "BERT (the source) beats Bort")):
        compared = [n for n in names if n in significance["tasks"]          # every scored set, as the
                    and n in finetune.get(a, {}) and n in finetune.get(b, {})]    # published tables count 23
        wins = [n for n in compared if significance["tasks"][n][key]["difference"] > 0]
        sig = [n for n in wins if significance["tasks"][n][key]["significant"]]
        losses = [n for n in compared if significance["tasks"][n][key]["difference"] < 0
                  and significance["tasks"][n][key]["significant"]]
        lines.append(f"{text} on {len(wins)} of {len(compared)} tasks, significantly on {len(sig)}"
                     f"{' (' + ', '.join(T.TASKS[n].label for n in sig) + ')' if sig else ''}; it is significantly "
                     f"worse on {len(losses)}{' (' + ', '.join(T.TASKS[n].label for n in losses) + ')' if losses else ''}.")
    lines.append(f"Significance: {cfg['test']} on the same held-out units, all {len(cfg['seeds'])} seeds' predictions "
                 f"swapped together, {cfg['resamples']} random permutations, level α = {cfg['alpha']}, one test per "
                 "task (no correction for the number of tasks). Intervals: "
                 f"{100 * cfg['confidence']:.0f}% {cfg['interval']} over held-out units ({cfg['resamples']} resamples, "
                 f"generator seed {cfg['seed']}), each seed's predictions scored on the same resample and averaged.")
    return lines


# ---------------------------------------------------------------------------------------------
# Bort in int8 (the settings chosen on dev, the witness and Agora's rounds: bort.report_runs)
# ---------------------------------------------------------------------------------------------

def int8_rows(int8: Optional[dict]):
    """Fine-tuned student, fp32 vs int8 (bort.quantize), same held-out split."""
    header = ["task", "metric(s)", "measured on", "Bort fp32", "Bort int8", "task score change (points)"]
    rows = []
    results = (int8 or {}).get("tasks", {})
    for name in [n for n in T.TASKS if n in results]:            # registry order; SuperGLUE-RTE by name
        task, r = T.TASKS[name], results[name]
        rows.append([name, "/".join(task.metrics), r["measured_on"], _fmt(task, r["fp32"]),
                     _fmt(task, r["int8"]), f"{100 * (r['int8_task_score'] - r['fp32_task_score']):+.1f}"])
    return header, rows


# ---------------------------------------------------------------------------------------------
# the task-score figure
# ---------------------------------------------------------------------------------------------

def scores_figure(finetune: Dict[str, Dict[str, dict]], floor: Dict[str, dict], path,
                  significance: Optional[dict] = None) -> None:
    """Task score (mean of its metrics, %) per task: floor, BERT, Bort, Bort + Agora; each model's
    bar with its interval (the significance stage's) as an error bar."""
    import numpy as np
    from bort import plots
    shown = [t for t in T.TASKS.values()
             if any(finetune.get(m, {}).get(t.name, {}).get("task_score") is not None for m in MODELS)]
    fig, ax = plots.plt.subplots(figsize=(13, 4.5))
    series = [("TF-IDF floor", [100 * task_score(t, floor[t.name]) if t.name in floor else 0 for t in shown])]
    series += [(MODEL_NAMES[m], [100 * finetune[m][t.name]["task_score"] if t.name in finetune.get(m, {}) else 0
                                 for t in shown]) for m in MODELS]
    width = 0.8 / len(series)
    intervals = (significance or {}).get("tasks", {})
    for k, (label, values) in enumerate(series):
        errors = None
        if k and intervals:
            m = MODELS[k - 1]
            ci = [intervals.get(t.name, {}).get(m) for t in shown]
            errors = [[max(0.0, v - 100 * c["low"]) if c else 0 for v, c in zip(values, ci)],
                      [max(0.0, 100 * c["high"] - v) if c else 0 for v, c in zip(values, ci)]]
        ax.bar(np.arange(len(shown)) + k * width, values, width, label=label, yerr=errors,
               error_kw={"elinewidth": 0.6, "capsize": 1.5})
    ax.set_xticks(np.arange(len(shown)) + width * (len(series) - 1) / 2)
    ax.set_xticklabels([t.label for t in shown], rotation=45, ha="right", fontsize=8)
    level = (significance or {}).get("config", {}).get("confidence")
    ax.set_ylabel("task score (%), held-out data\nmean over seeds" + (f", {100 * level:.0f}% interval" if level else ""))
    ax.legend(fontsize=8, ncol=4)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    plots.save(fig, path)
