"""Confidence intervals and paired significance tests over held-out instances, the seeds pooled.

A cell of the report is one model's task score averaged over its fine-tuning seeds. How far it
can be trusted depends on two noises: the fine-tuning seed (the spread over seeds, in the metrics
files) and the held-out sample, which is small in the embedded data (48-200 instances). Both are
folded into one interval by the bootstrap over held-out instances with the seeds pooled (our
reading of "seeds pooled"): each resample draws units of the held-out set with replacement and
scores every seed's predictions on that same resample; the statistic is the mean over seeds.

- Interval: scipy.stats.bootstrap, percentile method, `confidence` (95%), a fixed generator seed
  so the report is byte-identical on one machine. A suite score (GLUE, SuperGLUE, RACE) resamples
  every task's units independently (stratified by task: scipy's multi-sample bootstrap) and
  averages the task scores as the leaderboard does.
- Paired test: the approximate randomisation test on the same held-out units (Noreen 1989; the
  usual test for NLP scores, Dror et al., ACL 2018): scipy.stats.permutation_test with
  `permutation_type="samples"` swaps, unit by unit, model A's predictions (every seed) with model
  B's, two-sided. It needs no assumption about the metric, so F1, MCC and correlations are tested
  the same way as accuracy.

Resampling unit: an instance, except where a metric is defined over groups -- MultiRC's questions
(EM: every answer option of a question right) and AX-g's male/female pairs (gender parity) -- so
those resample whole groups (a cluster bootstrap, our reading). Questions that share a passage
(BoolQ, RACE, ReCoRD, MultiRC's questions of one paragraph) are resampled one by one, as if
independent: for those tasks the intervals are somewhat too narrow (our reading; RACE's 48
held-out questions come from 16 passages).

Speed: the statistic is vectorised over resamples. Every metric is a function of per-unit
sufficient statistics summed over the resample (a confusion matrix, counts), except the
correlations, which read each resample's pairs (Spearman ranks them, scipy.stats.rankdata). tests/test_significance.py checks
each against bort.metrics (scikit-learn's and scipy's scorers) on random resamples.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence

import numpy as np
from scipy import stats

from bort import metrics as M
from bort.errors import BortError
from bort.params import ParamError, Section, positive

BATCH = 500                    # resamples scored at once (bounds memory: seeds x batch x units x stats)
#: the paired comparisons: (name, model A, model B); the difference is A - B
COMPARISONS = (("bert_vs_bort", "bert", "bort"), ("agora_vs_bort", "bort-agora", "bort"))


@dataclass(frozen=True)
class SignificanceConfig(Section):
    """params.yaml `significance`."""
    resamples: int             # bootstrap resamples and random permutations
    confidence: float          # of the intervals
    alpha: float               # level of the paired tests
    seed: int                  # of the resampling generator (a fixed seed: a byte-identical report)

    def validate(self) -> None:
        positive(self, "resamples")
        for key in ("confidence", "alpha"):
            if not 0 < getattr(self, key) < 1:
                raise ParamError(key, f"expected a value in (0, 1), got {getattr(self, key)}")


def unit_keys(task, instances: Sequence[dict]) -> List:
    """The resampling unit of each instance: its question for MultiRC (EM), its pair for AX-g
    (gender parity), else the instance itself."""
    if "em" in task.metrics:
        return [i["group"] for i in instances]
    if "gender_parity" in task.metrics:
        return [i["pair_id"] for i in instances]
    return list(range(len(instances)))


class Scored:
    """One model's held-out predictions on one task, every seed's; `score(idx)` is the mean over
    seeds of the task score on the resample `idx` (unit indices, any leading shape)."""

    def __init__(self, task, instances: Sequence[dict], predictions: Sequence[Sequence]):
        if not predictions:
            raise BortError(f"{task.name}: no runs to score")
        for preds in predictions:
            if len(preds) != len(instances):
                raise BortError(f"{task.name}: {len(preds)} predictions for {len(instances)} held-out instances")
        self.task = task
        keys = unit_keys(task, instances)
        order = {k: j for j, k in enumerate(dict.fromkeys(keys))}
        self.unit = np.asarray([order[k] for k in keys])
        self.n_units = len(order)
        self.parts = {name: np.stack([self._part(name, instances, list(p)) for p in predictions])
                      for name in task.metrics}

    def _units(self, per_instance: np.ndarray) -> np.ndarray:
        """(units, k): per-instance statistics (instances, k) summed within each unit."""
        out = np.zeros((self.n_units, per_instance.shape[1]))
        np.add.at(out, self.unit, per_instance)
        return out

    def _part(self, name: str, instances, preds) -> np.ndarray:
        """(units, k) sufficient statistics of metric `name` for one seed's predictions."""
        gold = [i["label"] for i in instances] if name not in ("record_f1", "record_em") else None
        one = np.ones(len(instances))
        if name in ("acc",):
            return self._units(np.stack([np.asarray(gold) == np.asarray(preds), one], 1).astype(float))
        if name in ("f1", "f1a"):
            g, p = np.asarray(gold) == 1, np.asarray(preds) == 1
            return self._units(np.stack([g & p, ~g & p, g & ~p], 1).astype(float))
        if name in ("macro_f1", "mcc"):
            labels = sorted(set(gold) | set(preds) | set(range(len(self.task.labels or ()))))
            code = {label: j for j, label in enumerate(labels)}
            k = len(labels)
            cells = np.zeros((len(instances), k * k))
            cells[np.arange(len(instances)), [code[g] * k + code[q] for g, q in zip(gold, preds)]] = 1
            return self._units(cells)
        if name in ("pearson", "spearman"):             # unit = instance: raw pairs (Spearman ranks them)
            return np.stack([np.asarray(gold, float), np.asarray(preds, float)], 1)
        if name == "em":
            per_unit = np.ones(self.n_units, bool)
            np.logical_and.at(per_unit, self.unit, np.asarray(gold) == np.asarray(preds))
            return np.stack([per_unit, np.ones(self.n_units)], 1).astype(float)
        if name == "gender_parity":
            first = {}
            same = np.ones(self.n_units, bool)
            for u, q in zip(self.unit, preds):
                same[u] &= first.setdefault(u, q) == q
            return np.stack([same, np.ones(self.n_units)], 1).astype(float)
        if name in ("record_f1", "record_em"):
            fn = M.token_f1 if name == "record_f1" else (
                lambda p, g: float(M.normalize_answer(p) == M.normalize_answer(g)))
            values = [max(fn(p, g) for g in i["answers"]) for i, p in zip(instances, preds)]
            return self._units(np.stack([np.asarray(values, float), one], 1))
        raise BortError(f"{self.task.name}: no resampling rule for metric {name!r}")

    def score(self, idx: np.ndarray, parts: Dict[str, np.ndarray] = None) -> np.ndarray:
        """Mean over seeds of the task score (mean of its metrics) on resample(s) `idx`."""
        parts = self.parts if parts is None else parts
        values = [_metric(name, parts[name], idx) for name in self.task.metrics]
        return np.mean(values, axis=0).mean(axis=0)

    def paired_with(self, other: "Scored") -> "Scored":
        """A Scored over 2n units: this model's (0..n-1), then `other`'s on the same units (n..2n-1)."""
        if other.task is not self.task or other.n_units != self.n_units:
            raise BortError(f"{self.task.name}: paired scores need the same held-out units")
        seeds = {len(p) for p in list(self.parts.values()) + list(other.parts.values())}
        if len(seeds) != 1:
            raise BortError(f"{self.task.name}: paired scores need the same seeds for both models")
        pair = object.__new__(Scored)
        pair.task, pair.unit, pair.n_units = self.task, None, 2 * self.n_units
        pair.parts = {k: np.concatenate([self.parts[k], other.parts[k]], axis=1) for k in self.parts}
        return pair


def _metric(name: str, part: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Metric `name` per seed and resample: (seeds, *idx.shape[:-1])."""
    taken = part[:, idx]                                 # (seeds, ..., m, k)
    if name == "pearson":
        return _pearson_from_pairs(taken)
    if name == "spearman":
        return _pearson_from_pairs(stats.rankdata(taken, axis=-2))
    s = taken.sum(axis=-2)                               # (seeds, ..., k)
    with np.errstate(divide="ignore", invalid="ignore"):
        if name in ("acc", "em", "gender_parity", "record_f1", "record_em"):
            return s[..., 0] / s[..., 1]
        if name in ("f1", "f1a"):
            tp, fp, fn = s[..., 0], s[..., 1], s[..., 2]
            return np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        k = int(round(np.sqrt(s.shape[-1]))) if name in ("macro_f1", "mcc") else 0
        if name == "macro_f1":                           # sklearn: classes in gold or predictions
            c = s.reshape(s.shape[:-1] + (k, k))
            tp = np.diagonal(c, axis1=-2, axis2=-1)
            fn, fp = c.sum(axis=-1) - tp, c.sum(axis=-2) - tp
            present = (tp + fp + fn) > 0
            f1 = np.where(present, 2 * tp / np.where(present, 2 * tp + fp + fn, 1), 0.0)
            return f1.sum(axis=-1) / np.maximum(present.sum(axis=-1), 1)
        if name == "mcc":                                # sklearn.metrics.matthews_corrcoef's formula
            c = s.reshape(s.shape[:-1] + (k, k))
            t, p = c.sum(axis=-1), c.sum(axis=-2)
            n, correct = c.sum(axis=(-2, -1)), np.trace(c, axis1=-2, axis2=-1)
            cov_tp = correct * n - (t * p).sum(-1)
            cov_pp, cov_tt = n * n - (p * p).sum(-1), n * n - (t * t).sum(-1)
            denom = cov_tt * cov_pp
            return np.where(denom > 0, cov_tp / np.sqrt(np.where(denom > 0, denom, 1)), 0.0)
    raise BortError(f"no resampling rule for metric {name!r}")


def _pearson_from_pairs(pairs: np.ndarray) -> np.ndarray:
    """Pearson's r of (..., m, 2) pairs from centred values; 0 where either side is constant
    (np.ptp == 0, bort.metrics' rule)."""
    x, y = pairs[..., 0], pairs[..., 1]
    dx, dy = x - x.mean(-1, keepdims=True), y - y.mean(-1, keepdims=True)
    ok = (np.ptp(x, axis=-1) > 0) & (np.ptp(y, axis=-1) > 0)
    denom = np.sqrt((dx * dx).sum(-1) * (dy * dy).sum(-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, (dx * dy).sum(-1) / np.where(ok, denom, 1), 0.0)


def interval(scored: Sequence[Scored], cfg: SignificanceConfig) -> dict:
    """Point estimate and `cfg.confidence` bootstrap interval of the mean task score over
    `scored` (one task: its score; a suite's tasks: the suite score), each task's units resampled
    independently."""
    def statistic(*idx, axis=-1):
        return np.mean([s.score(i) for s, i in zip(scored, idx)], axis=0)
    data = tuple(np.arange(s.n_units) for s in scored)
    point = float(statistic(*data))
    res = stats.bootstrap(data, statistic, n_resamples=cfg.resamples, batch=BATCH, vectorized=True,
                          confidence_level=cfg.confidence, method="percentile",
                          rng=np.random.default_rng(cfg.seed))
    return {"score": point, "low": float(res.confidence_interval.low), "high": float(res.confidence_interval.high)}


def paired_test(a: Sequence[Scored], b: Sequence[Scored], cfg: SignificanceConfig) -> dict:
    """Approximate randomisation test of mean task score(a) - score(b) on the same units (one
    task, or a suite's tasks with every task's units swapped independently); two-sided."""
    pairs = [x.paired_with(y) for x, y in zip(a, b)]
    sizes = [x.n_units for x in a]
    offsets = np.cumsum([0] + sizes)
    total = int(offsets[-1])

    def local(g, t):
        """Global unit indices (A: 0..total-1, B: total..2 total-1) -> task t's paired indices."""
        is_b = g >= total
        return np.where(is_b, g - total - offsets[t] + sizes[t], g - offsets[t])

    def suite(g):
        return np.mean([pairs[t].score(local(g[..., offsets[t]:offsets[t + 1]], t)) for t in range(len(pairs))],
                       axis=0)

    def statistic(x, y, axis=-1):
        return suite(x) - suite(y)
    x, y = np.arange(total), np.arange(total) + total
    res = stats.permutation_test((x, y), statistic, permutation_type="samples", vectorized=True,
                                 n_resamples=cfg.resamples, batch=BATCH, alternative="two-sided",
                                 rng=np.random.default_rng(cfg.seed))
    return {"difference": float(res.statistic), "p_value": float(res.pvalue),
            "significant": bool(res.pvalue < cfg.alpha)}
