"""Every metric the 23 tasks report, as named functions on top of scikit-learn and scipy.

Metrics are values in [0, 1] (correlations in [-1, 1]); the report multiplies by 100 as the
leaderboards print them. `score(task, instances, predictions)` picks the task's metrics from its
registry entry (bort.tasks) by name, so tasks never carry scoring code of their own; `task_score`
is the one place a task's metrics become its single score (the leaderboards' mean).

Definitions follow the official scorers: MultiRC F1a is binary F1 over all answer options and EM
the share of questions whose every option is right; ReCoRD takes, per query, the maximum over the
gold answers of the SQuAD-normalised token F1 and exact match; AX-g's gender parity is the share
of male/female pairs (same `pair_id`) that receive the same prediction.
"""
from __future__ import annotations

import re
import string
from collections import Counter, defaultdict
from typing import Callable, Dict, Sequence

import numpy as np
from scipy import stats
from sklearn import metrics as skm


def acc(y_true, y_pred) -> float:
    return float(skm.accuracy_score(y_true, y_pred))


def f1(y_true, y_pred) -> float:
    """Binary F1 of the positive class (label index 1), as GLUE scores MRPC and QQP."""
    return float(skm.f1_score(y_true, y_pred, pos_label=1, average="binary", zero_division=0))


def macro_f1(y_true, y_pred) -> float:
    """Unweighted mean of per-class F1 over the classes present in gold or predictions (CB)."""
    return float(skm.f1_score(y_true, y_pred, average="macro", zero_division=0))


def mcc(y_true, y_pred) -> float:
    return float(skm.matthews_corrcoef(y_true, y_pred))


def _correlation(fn, y_true, y_pred) -> float:
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    if np.ptp(y_true) == 0 or np.ptp(y_pred) == 0:
        return 0.0                          # undefined for a constant; the leaderboard gives 0
    return float(fn(y_true, y_pred)[0])


def pearson(y_true, y_pred) -> float:
    return _correlation(stats.pearsonr, y_true, y_pred)


def spearman(y_true, y_pred) -> float:
    return _correlation(stats.spearmanr, y_true, y_pred)


def f1a(y_true, y_pred) -> float:
    """MultiRC F1a: binary F1 over every answer option of every question."""
    return f1(y_true, y_pred)


def em(y_true, y_pred, groups) -> float:
    """MultiRC EM: share of questions (groups) whose answer options are all predicted right."""
    right = defaultdict(lambda: True)
    for gold, pred, group in zip(y_true, y_pred, groups):
        right[group] &= gold == pred
    return float(np.mean(list(right.values()))) if right else 0.0


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, drop punctuation, articles and extra white space."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def token_f1(prediction: str, gold: str) -> float:
    pred_tokens, gold_tokens = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = Counter(pred_tokens) & Counter(gold_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(pred_tokens), overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def record_f1(golds: Sequence[Sequence[str]], preds: Sequence[str]) -> float:
    return float(np.mean([max(token_f1(p, g) for g in gs) for gs, p in zip(golds, preds)]))


def record_em(golds: Sequence[Sequence[str]], preds: Sequence[str]) -> float:
    return float(np.mean([max(float(normalize_answer(p) == normalize_answer(g)) for g in gs)
                          for gs, p in zip(golds, preds)]))


def gender_parity(y_pred, pair_ids) -> float:
    """AX-g: share of pairs (examples sharing a pair_id) whose predictions all agree."""
    by_pair = defaultdict(set)
    for pred, pair in zip(y_pred, pair_ids):
        by_pair[pair].add(pred)
    return float(np.mean([len(preds) == 1 for preds in by_pair.values()])) if by_pair else 0.0


def _labels(instances) -> list:
    return [i["label"] for i in instances]


#: metric name -> fn(instances, predictions); each reads the gold it needs from the instances
METRICS: Dict[str, Callable[[Sequence[dict], Sequence], float]] = {
    "acc": lambda inst, pred: acc(_labels(inst), pred),
    "f1": lambda inst, pred: f1(_labels(inst), pred),
    "macro_f1": lambda inst, pred: macro_f1(_labels(inst), pred),
    "mcc": lambda inst, pred: mcc(_labels(inst), pred),
    "pearson": lambda inst, pred: pearson(_labels(inst), pred),
    "spearman": lambda inst, pred: spearman(_labels(inst), pred),
    "f1a": lambda inst, pred: f1a(_labels(inst), pred),
    "em": lambda inst, pred: em(_labels(inst), pred, [i["group"] for i in inst]),
    "gender_parity": lambda inst, pred: gender_parity(pred, [i["pair_id"] for i in inst]),
    "record_f1": lambda inst, pred: record_f1([i["answers"] for i in inst], pred),
    "record_em": lambda inst, pred: record_em([i["answers"] for i in inst], pred),
}


def score(task, instances: Sequence[dict], predictions: Sequence) -> Dict[str, float]:
    """All of `task.metrics` for predictions aligned with `instances` (labelled ones only)."""
    if len(instances) != len(predictions):
        raise ValueError(f"{task.name}: {len(predictions)} predictions for {len(instances)} instances")
    return {name: METRICS[name](instances, predictions) for name in task.metrics}


def task_score(task, metrics: Dict[str, float]) -> float:
    """One number per task, as the leaderboards average: the mean of the task's metrics."""
    return float(np.mean([metrics[m] for m in task.metrics]))
