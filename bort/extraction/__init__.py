"""Optimal sub-architecture extraction as published: the W-coefficient, every candidate × every
hyperparameter set trained for the interval s(ε), the argmax, and the Pareto front -- for any
network family.

Sources. de Wynter, "An Approximation Algorithm for Optimal Subarchitecture Extraction" (arXiv
2010.08512), applied to BERT in de Wynter & Perry (arXiv 2010.10499, the Bort paper). The paper
is not reachable offline; the formula below is its Definition 8 as a third-party re-implementation
that cites it gives it (github kmz4/QHACK2021, qose/train_utils.py), and the algorithm is read from
the paper's running time O(|Ξ| + |W*_T| (1 + |Θ||B||Ξ| / (ε s^{3/2}))):

- W-coefficient, maximised: W(ξ) = (1 − p(ξ)/p_T) · (1 − i(ξ)/i_T) / e(ξ), where p is the
  parameter size, i the inference cost, e the error, and T the space's maximum point (the largest
  p and the largest i over Ξ). The largest candidate has W = 0; a candidate is worth its size and
  cost savings divided by its error.
- Every candidate ξ ∈ Ξ is trained under every hyperparameter set θ ∈ Θ for an interval that
  depends on ε; p and i are analytic; for each candidate the best θ is kept (the lowest error,
  which is the largest W, since p and i do not depend on θ); the answer ξ* is the argmax of W.
  No rounding into classes, error bound or pruning is described, and none is done here: every
  candidate is trained.

Our reading (said again in the README): the interval s(ε) = ceil(steps_per_unit_eps / ε) steps
(or epochs), polynomial -- linear -- in 1/ε, with the constant in params.yaml; the family decides
what p, i and e are (`bort.extraction.bert`: effective parameters, FLOPs per sequence and the
held-out distillation loss; `bort.extraction.mlp`: weights, multiply-adds and the held-out
log-loss). Each candidate is trained once up to the longest interval asked for, and e is read at
every interval on the way: the hyperparameters do not depend on the run's length (constant
learning rate), so e after k steps of a long run is e of a run of k steps. That gives, from one
set of trainings, ξ* for several ε and the rank stability of e between s and 2s (Spearman over
the whole space): a surrogate that ranks is one whose order does not change when its interval
doubles.

A family is any object with the `Family` methods: how to enumerate Ξ, count p and i, and train a
candidate briefly (`train_all`), so the same algorithm extracts from BERT or from a multilayer
perceptron (`python -m bort.extraction mlp --eps 0.5 --json`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Protocol, Sequence, Tuple

from bort.errors import BortError

Point = Tuple[int, ...]


class Family(Protocol):
    """A network family the extraction runs on (module docstring)."""
    name: str
    fields: Tuple[str, ...]        # the architectural parameters, e.g. ("depth", "num_heads", ...)
    thetas: List[dict]             # the hyperparameter set Θ

    def space(self) -> List[Point]: ...
    def size(self, point: Point) -> int: ...           # p(ξ)
    def cost(self, point: Point) -> int: ...           # i(ξ)

    def train_all(self, jobs: Sequence[Tuple[Point, int]], intervals: Sequence[int], progress=None
                  ) -> Dict[Tuple[Point, int], List[float]]:
        """e after each of `intervals` for every (ξ, index into Θ) job; `progress(job, errors)`
        after each."""


def interval(eps: float, steps_per_unit_eps: int) -> int:
    """s(ε): the training interval, linear in 1/ε (our reading of "polynomial in 1/ε")."""
    if eps <= 0:
        raise BortError(f"ε must be positive, got {eps}")
    return max(1, math.ceil(round(steps_per_unit_eps / eps, 9)))     # 21 / 0.7 is 30, not 30.000000000000004


def w_coefficient(p: float, i: float, e: float, p_top: float, i_top: float) -> float:
    """W(ξ) = (1 − p/p_T)(1 − i/i_T) / e (arXiv 2010.08512, Definition 8), maximised."""
    if not e > 0 or not math.isfinite(e):
        raise BortError(f"error must be positive and finite for the W-coefficient, got {e}")
    return (1 - p / p_top) * (1 - i / i_top) / e


@dataclass
class Candidate:
    point: Point
    params: int                                    # p(ξ)
    flops: int                                     # i(ξ)
    errors: Dict[int, List[float]] = field(default_factory=dict)   # interval -> e per θ

    def error(self, steps: int) -> float:
        """min over Θ of e after `steps`: the best hyperparameter set's error."""
        return min(self.errors[steps])

    def theta(self, steps: int) -> int:
        """Index of the best θ after `steps` (the first on ties)."""
        values = self.errors[steps]
        return values.index(min(values))


@dataclass
class Choice:
    """ξ* for one ε: the argmax of W with errors read at s(ε)."""
    eps: float
    steps: int
    best: Candidate
    w: float


@dataclass
class Result:
    family: str
    fields: Tuple[str, ...]
    thetas: List[dict]
    candidates: List[Candidate]
    eps: float
    steps: int                                     # s(ε)
    p_top: int
    i_top: int
    choices: List[Choice]                          # one per ε, the main ε's first
    front: List[Candidate]
    rank_stability: float                          # Spearman of e between s and 2s over Ξ
    reference: Optional[Choice] = None             # ξ* with every candidate trained far longer

    @property
    def chosen(self) -> Choice:
        return self.choices[0]

    def w(self, c: Candidate, steps: Optional[int] = None) -> float:
        return w_coefficient(c.params, c.flops, c.error(steps or self.steps), self.p_top, self.i_top)


def choose(candidates: Sequence[Candidate], eps: float, steps: int, p_top: int, i_top: int) -> Choice:
    """argmax W at interval `steps`; ties go to the smaller point (sorted order)."""
    scored = [(w_coefficient(c.params, c.flops, c.error(steps), p_top, i_top), c) for c in candidates]
    w, best = max(scored, key=lambda pair: (pair[0], tuple(-v for v in pair[1].point)))
    return Choice(eps, steps, best, w)


def pareto_front(candidates: Sequence[Candidate], steps: int) -> List[Candidate]:
    """Candidates not dominated in (p, i, e at `steps`): none other ≤ on all three and < on one."""
    keys = {id(c): (c.params, c.flops, c.error(steps)) for c in candidates}

    def dominates(a, b):
        return all(x <= y for x, y in zip(a, b)) and a != b
    front = [c for c in candidates if not any(dominates(keys[id(o)], keys[id(c)]) for o in candidates)]
    return sorted(front, key=lambda c: (c.params, c.flops, c.point))


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation (scipy), 1.0 for fewer than three values."""
    from scipy.stats import spearmanr
    if len(a) < 3:
        return 1.0
    return float(spearmanr(a, b).correlation)


def extract(family: Family, eps: float, steps_per_unit_eps: int, other_eps: Sequence[float] = (),
            progress=None, reference_interval: Optional[int] = None) -> Result:
    """Train every candidate × every θ up to the longest interval needed, then choose ξ* at ε and
    at each of `other_eps`, the front at s(ε) and the rank stability between s(ε) and 2·s(ε).

    With `reference_interval`, the same runs go on to that many steps and `Result.reference` is the
    argmax of W there: the exhaustive optimum, trained to (near) convergence, that the FPTAS
    promises to be within a factor (1 + ε) of."""
    points = sorted(family.space())
    if not points:
        raise BortError(f"{family.name}: the search space is empty; expected at least one candidate")
    if not family.thetas:
        raise BortError(f"{family.name}: the hyperparameter set Θ is empty; expected at least one θ")
    steps = interval(eps, steps_per_unit_eps)
    all_eps = list(dict.fromkeys([eps, *other_eps]))            # the main ε first, no repeats
    intervals = sorted({interval(e, steps_per_unit_eps) for e in all_eps} | {steps, 2 * steps}
                       | ({reference_interval} if reference_interval else set()))
    candidates = [Candidate(pt, family.size(pt), family.cost(pt)) for pt in points]
    jobs = [(c.point, k) for c in candidates for k in range(len(family.thetas))]
    errors = family.train_all(jobs, intervals, progress)
    for c in candidates:
        for n, at in enumerate(intervals):
            c.errors[at] = [errors[(c.point, k)][n] for k in range(len(family.thetas))]
            bad = [e for e in c.errors[at] if not (math.isfinite(e) and e > 0)]
            if bad:
                raise BortError(f"{family.name} candidate {c.point}: error {bad[0]} after {at} steps; expected a "
                                "positive finite error (a diverged run: try smaller learning rates)")
    p_top, i_top = max(c.params for c in candidates), max(c.flops for c in candidates)
    choices = [choose(candidates, e, interval(e, steps_per_unit_eps), p_top, i_top) for e in all_eps]
    stability = spearman([c.error(steps) for c in candidates], [c.error(2 * steps) for c in candidates])
    reference = choose(candidates, eps, reference_interval, p_top, i_top) if reference_interval else None
    return Result(family.name, tuple(family.fields), list(family.thetas), candidates, eps, steps, p_top, i_top,
                  choices, pareto_front(candidates, steps), stability, reference)


def theta_label(theta: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(theta.items()))


def columns(result: Result) -> List[str]:
    """The candidate table's columns (reports/candidates.csv)."""
    return [*result.fields, "params", "flops", "error", "error_2s", "theta", "w", "on_front", "chosen"]


def rows(result: Result) -> List[list]:
    """One row per candidate, in point order: p, i, e at s and 2s, the best θ at s, W at s,
    whether it is on the front and whether it is ξ*."""
    front = {id(c) for c in result.front}
    s = result.steps
    return [[*c.point, c.params, c.flops, round(c.error(s), 6), round(c.error(2 * s), 6),
             theta_label(result.thetas[c.theta(s)]), round(result.w(c), 6), int(id(c) in front),
             int(c is result.chosen.best)] for c in result.candidates]


def summary(result: Result) -> dict:
    """What metrics/extract.json and the CLI's --json report: ξ* for every ε, the front's size,
    the rank stability, the work done."""
    def point(c: Candidate) -> dict:
        return dict(zip(result.fields, c.point))
    return {
        "family": result.family,
        "chosen": {**point(result.chosen.best), "arch": list(result.chosen.best.point),
                   "params": result.chosen.best.params, "flops": result.chosen.best.flops,
                   "error": round(result.chosen.best.error(result.steps), 6), "w": round(result.chosen.w, 6),
                   "theta": result.thetas[result.chosen.best.theta(result.steps)]},
        "by_eps": [{"eps": ch.eps, "interval": ch.steps, "arch": list(ch.best.point), "w": round(ch.w, 6),
                    "error": round(ch.best.error(ch.steps), 6)} for ch in result.choices],
        "eps": result.eps, "interval": result.steps, "interval_2s": 2 * result.steps,
        "rank_stability_spearman": round(result.rank_stability, 6),
        "grid_candidates": len(result.candidates), "trained_candidates": len(result.candidates),
        "thetas": result.thetas, "trainings": len(result.candidates) * len(result.thetas),
        "front_size": len(result.front), "p_top": result.p_top, "i_top": result.i_top,
    }
