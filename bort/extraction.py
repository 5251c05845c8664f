"""Optimal sub-architecture extraction: the FPTAS over ⟨D, A, H, I⟩ and its Pareto front.

de Wynter, "An Approximation Algorithm for Optimal Subarchitecture Extraction" (arXiv 2010.08512),
as Bort applies it to BERT (arXiv 2010.10499). From the space Ξ of sub-architectures of the source,
find the one with the best W-coefficient -- a single number folding parameter size p, inference cost i and error e --
without training every candidate to convergence.

What the papers fix, and what we chose (our interpretation; the exact W formula and the
algorithm's constants are not available offline):

- p(ξ) = effective (non-embedding) parameters and i(ξ) = FLOPs per sequence at a reference
  length, both analytic (bort.arch); e(ξ) = surrogate error: the normalised held-out loss of the
  candidate after a short knowledge-distillation run from the teacher (bort.distillation). The
  run's length is the "interval" of the papers and grows polynomially with 1/ε:
  steps(ε) = ceil(steps_per_unit_eps / ε).
- W(ξ) = e(ξ) · (p(ξ)/p(source))^α · (i(ξ)/i(source))^β.
- Rounding (the "approximation scheme"): candidates whose (p, i) fall in the same cell of a
  (1+ε)-geometric grid are one class; a class is first represented by its cheapest member.
- Bounding: under the ABnC assumptions the error is monotone in capacity -- a sub-architecture
  of ξ is never better than ξ -- so e(top) of the largest candidate bounds every error from below
  and W(class) ≥ e_lb · cost(class). Classes are visited cheapest first and a class whose bound
  already exceeds the incumbent W / (1+ε) is pruned with everything costlier.
- Refinement: every member of each class whose representative came within (1+ε) of the best (or
  was infeasible) is trained too, largest first, skipping members that are sub-architectures of
  an infeasible trained candidate (monotone error: they cannot be feasible), and the answer is the best trained candidate. Coarser grids (larger ε) mean fewer
  classes, a looser pruning threshold and fewer trained candidates.
- Feasibility: a candidate whose surrogate error is above `max_error` learned next to nothing in
  its interval (the error is normalised so that 1.0 is the constant predictor) and cannot be
  chosen, however cheap; without this rule W's size factors always pick the smallest network.
- `mode: exhaustive` trains every candidate with the same budget, the check that the FPTAS's W
  is within (1+ε) of the true optimum over Ξ while training fewer candidates.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Literal, Optional, Sequence

from bort.arch import Arch
from bort.errors import BortError
from bort.params import ParamError, Section, positive


@dataclass(frozen=True)
class SpaceConfig(Section):
    """params.yaml `extract.space`: the grid of ⟨D, A, H, I⟩ values (sub-architectures of the source)."""
    depth: List[int]
    num_heads: List[int]
    hidden_size: List[int]
    intermediate_size: List[int]


@dataclass(frozen=True)
class ExtractConfig(Section):
    """params.yaml `extract`."""
    mode: Literal["fptas", "exhaustive"]   # exhaustive: train every candidate (verification; slow)
    eps: float                     # approximation parameter ε
    alpha: float                   # W = e · (p/p_source)^alpha · (i/i_source)^beta
    beta: float
    max_error: float               # feasible only if e(ξ) ≤ this (1.0: the constant predictor)
    seq_len: int                   # reference length of i(ξ), FLOPs per sequence
    space: SpaceConfig
    steps_per_unit_eps: int        # training interval per candidate: ceil(steps_per_unit_eps / ε)
    batch_size: int
    chunk_len: int                 # tokens per corpus chunk in the short runs
    train_chunks: int
    heldout_chunks: int
    lr: float
    seed: int
    init: Literal["teacher", "random"]     # candidates start from the teacher's sub-matrices, or random

    def validate(self) -> None:
        positive(self, "seq_len", "steps_per_unit_eps", "batch_size", "chunk_len", "train_chunks", "heldout_chunks")
        if self.eps <= 0:
            raise ParamError("eps", f"expected a positive number, got {self.eps}")


@dataclass
class Candidate:
    arch: Arch
    params: int                    # effective parameters p
    flops: int                     # FLOPs per sequence i
    cost: float = 0.0              # (p/p0)^α (i/i0)^β
    cell: tuple = ()
    error: Optional[float] = None  # surrogate e, when trained
    status: str = "untrained"      # trained | pruned | represented (class rep trained, not refined)
    on_front: bool = False

    @property
    def w(self) -> Optional[float]:
        return None if self.error is None else self.error * self.cost

    def feasible(self, max_error: float) -> bool:
        return self.error is not None and self.error <= max_error


def search_space(source: Arch, depths: Sequence[int], heads: Sequence[int], hidden: Sequence[int],
                 intermediate: Sequence[int], include_source: bool = False) -> List[Arch]:
    """Every valid ⟨D, A, H, I⟩ from the grids that is a sub-architecture of `source`.

    Combinations with H not divisible by A are skipped (GluonNLP splits H evenly over heads);
    values larger than the source's are an error, since they cannot be extracted from it."""
    for name, values, limit in (("depth", depths, source.depth), ("num_heads", heads, source.num_heads),
                                ("hidden_size", hidden, source.hidden_size),
                                ("intermediate_size", intermediate, source.intermediate_size)):
        bad = [v for v in values if not isinstance(v, int) or v <= 0 or v > limit]
        if bad:
            raise BortError(f"params.yaml extract.space.{name}: {bad} outside 1..{limit} of the source {source}")
    space = []
    for d, a, h, i in itertools.product(sorted(set(depths)), sorted(set(heads)), sorted(set(hidden)),
                                        sorted(set(intermediate))):
        if h % a:
            continue
        arch = source.extracted((d, a, h, i))
        if arch.tuple == source.tuple and not include_source:
            continue
        space.append(arch)
    return space


def make_candidates(space: Sequence[Arch], source: Arch, eps: float, alpha: float, beta: float,
                    seq_len: int) -> List[Candidate]:
    p0, i0 = source.effective_params, source.flops_per_seq(seq_len)
    out = []
    for arch in space:
        p, i = arch.effective_params, arch.flops_per_seq(seq_len)
        c = Candidate(arch, p, i, cost=(p / p0) ** alpha * (i / i0) ** beta)
        c.cell = (math.floor(math.log(p) / math.log1p(eps)), math.floor(math.log(i) / math.log1p(eps)))
        out.append(c)
    return out


def budget_steps(eps: float, steps_per_unit_eps: int) -> int:
    """The training interval grows polynomially (here linearly) with 1/ε."""
    return max(1, math.ceil(steps_per_unit_eps / eps))


@dataclass
class Result:
    candidates: List[Candidate]
    best: Candidate
    trained: int
    classes: int
    eps: float
    mode: str
    steps: int
    front: List[Candidate] = field(default_factory=list)


def _train(c: Candidate, error_fn, progress):
    c.error = float(error_fn(c.arch))
    c.status = "trained"
    if progress is not None:
        progress(c)


def exhaustive(candidates: List[Candidate], error_fn: Callable[[Arch], float], progress=None) -> List[Candidate]:
    for c in candidates:
        _train(c, error_fn, progress)
    return candidates


def fptas(candidates: List[Candidate], eps: float, error_fn: Callable[[Arch], float], progress=None,
          max_error: float = math.inf) -> List[Candidate]:
    """Round to (1+ε) classes, bound with the top candidate's error, train, prune, refine."""
    top = max(candidates, key=lambda c: (c.params, c.flops, c.arch.tuple))
    if not all(c.arch.within(top.arch) for c in candidates):
        raise BortError("the search space has no single largest candidate containing all others; "
                        "expected a grid whose maxima form a candidate")
    _train(top, error_fn, progress)
    e_floor = top.error
    if not top.feasible(max_error):
        raise BortError(f"even the largest candidate {top.arch} has surrogate error {top.error:.3f} > "
                        f"max_error {max_error}; expected a longer interval or a larger max_error")
    classes: Dict[tuple, List[Candidate]] = {}
    for c in candidates:
        classes.setdefault(c.cell, []).append(c)
    order = sorted(classes.values(), key=lambda members: min(m.cost for m in members))
    incumbent = top.w
    representatives = []
    for k, members in enumerate(order):
        cheapest = min(members, key=lambda m: (m.cost, m.arch.tuple))
        if e_floor * cheapest.cost >= incumbent / (1 + eps):
            for rest in order[k:]:
                for m in rest:
                    if m.status == "untrained":
                        m.status = "pruned"
            break
        if cheapest.status == "untrained":
            _train(cheapest, error_fn, progress)
        representatives.append((cheapest, members))
        if cheapest.feasible(max_error):
            incumbent = min(incumbent, cheapest.w)
    infeasible = [c for c in candidates if c.error is not None and not c.feasible(max_error)]
    for rep, members in representatives:
        # an infeasible representative may hide feasible members: refine its class as well
        if rep.w <= (1 + eps) * incumbent or not rep.feasible(max_error):
            for m in sorted(members, key=lambda m: (-m.cost, m.arch.tuple)):   # largest first
                if m.status != "untrained":
                    continue
                if any(m.arch.within(bad.arch) for bad in infeasible):
                    m.status = "pruned"          # inside an infeasible candidate: infeasible too
                    continue
                _train(m, error_fn, progress)
                if not m.feasible(max_error):
                    infeasible.append(m)
        for m in members:
            if m.status == "untrained":
                m.status = "represented"
    return candidates


def pareto_front(candidates: Sequence[Candidate]) -> List[Candidate]:
    """Trained candidates not dominated in (p, i, e): none other is ≤ on all three and < on one."""
    trained = [c for c in candidates if c.error is not None]
    front = []
    for c in trained:
        dominated = any(o is not c and o.params <= c.params and o.flops <= c.flops and o.error <= c.error
                        and (o.params < c.params or o.flops < c.flops or o.error < c.error) for o in trained)
        c.on_front = not dominated
        if not dominated:
            front.append(c)
    return sorted(front, key=lambda c: (c.params, c.flops))


def extract(candidates: List[Candidate], eps: float, mode: str, error_fn, steps: int = 0, progress=None,
            max_error: float = math.inf) -> Result:
    if mode == "fptas":
        fptas(candidates, eps, error_fn, progress, max_error)
    elif mode == "exhaustive":
        exhaustive(candidates, error_fn, progress)
    else:
        raise BortError(f"params.yaml extract.mode: expected 'fptas' or 'exhaustive', got {mode!r}")
    trained = [c for c in candidates if c.error is not None]
    feasible = [c for c in trained if c.feasible(max_error)]
    if not feasible:
        raise BortError(f"no trained candidate reached max_error {max_error}; expected a longer interval")
    best = min(feasible, key=lambda c: (c.w, c.arch.tuple))
    front = pareto_front(candidates)
    return Result(candidates, best, len(trained), len({c.cell for c in candidates}), eps, mode, steps, front)


#: the columns of the candidate table (models/extract/candidates.csv, reports/pareto.csv)
COLUMNS = ["depth", "num_heads", "hidden_size", "intermediate_size", "effective_params", "flops_per_seq",
           "cost", "error", "w", "status", "on_front", "chosen"]


def candidate_rows(result: Result) -> List[list]:
    """One row per candidate (COLUMNS), in ⟨D, A, H, I⟩ order."""
    return [[*c.arch.tuple, c.params, c.flops, round(c.cost, 8),
             "" if c.error is None else round(c.error, 6), "" if c.w is None else round(c.w, 8),
             c.status, int(c.on_front), int(c is result.best)]
            for c in sorted(result.candidates, key=lambda c: c.arch.tuple)]
