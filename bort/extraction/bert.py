"""The BERT family of the extraction: the sub-architectures ⟨D, A, H, I⟩ of a source encoder, their
exact p and i (bort.arch) and a surrogate error from a short distillation run (arXiv 2010.10499,
which extracts Bort from BERT-large with the FPTAS of arXiv 2010.08512).

Our reading of the pieces the papers leave to the implementer:
- p(ξ) = effective (non-embedding) parameters, i(ξ) = FLOPs per sequence at `seq_len`.
- e(ξ) = the held-out, variance-normalised hidden-state distillation loss after the interval
  (bort.distillation; 1.0 = predicting the teacher's mean state), the readout first fitted by
  least squares. Every candidate sees the same seeded batches and held-out chunks.
- Initialisation: every candidate from the teacher, head-aware (bort.distillation.init_from_teacher:
  student head k is teacher head k), so A is not decided by how the matrices are sliced; or
  `init: random` for all.
- Cheap training (measured in issue 15: about 1 s per candidate and θ on one core): the teacher's
  states are computed once and shared; the candidates' vocabulary is compacted to the token ids
  the chunks use (the other tokens' embedding rows would get no gradient, so training is the
  same; the random draws for coordinates initialised at random are not an uncompacted run's,
  since a smaller embedding is drawn first); the readout fit is shared by every θ; and the candidates are spread over `workers` processes of
  one thread each (MXNet's small-matrix kernels gain little from a second thread, a second
  process doubles the throughput). One thread per run makes e the same whatever `workers` is.
  On GPU contexts (params.yaml `device`) the candidates train in-process, data-parallel; with
  `workers` naming a Dask cluster (bort.cluster) they go to its workers, one GPU each on GPU contexts.
- Resume: each candidate's errors are journalled (JSON lines) under a fingerprint of what they
  depend on (the settings, the teacher's files, the corpus, the device) with the intervals they
  were read at; an interrupted stage trains only the missing ones, and a finished one clears the
  journal (`bort.checkpoint.clear`), so a re-run after a code change trains everything again.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import logging
from concurrent.futures import as_completed
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Dict, List, Literal, Optional, Sequence, Union

import numpy as np

from bort import distillation as kd
from bort import workers
from bort.arch import Arch
from bort.errors import BortError
from bort.extraction import Point
from bort.params import ParamError, Section, positive, workers as check_workers

log = logging.getLogger(__name__)


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
    eps: float                     # approximation parameter ε: the interval is s(ε) steps
    other_eps: List[float]         # further ε whose ξ* the report shows (from the same trainings)
    steps_per_unit_eps: int        # s(ε) = ceil(steps_per_unit_eps / ε)
    learning_rates: List[float]    # the hyperparameter set Θ (Adam, constant)
    seq_len: int                   # reference length of i(ξ), FLOPs per sequence
    space: SpaceConfig
    batch_size: int
    chunk_len: int                 # tokens per corpus chunk in the short runs
    train_chunks: int
    fit_chunks: int                # chunks the readout is fitted on before the first step
    heldout_chunks: int
    seed: int
    init: Literal["teacher", "random"]
    workers: Union[int, str]       # processes training candidates on CPU (one thread each), or a Dask cluster

    def validate(self) -> None:
        positive(self, "steps_per_unit_eps", "seq_len", "batch_size", "chunk_len", "train_chunks", "fit_chunks",
                 "heldout_chunks")
        check_workers(self)
        for name, values in (("eps", [self.eps]), ("other_eps", self.other_eps), ("learning_rates", self.learning_rates)):
            if any(v <= 0 for v in values):
                raise ParamError(name, f"expected positive numbers, got {values}")
        if not self.learning_rates:
            raise ParamError("learning_rates", "expected at least one learning rate (the set Θ)")


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


@dataclass
class Data:
    """What every candidate's run reads: the teacher's tensors (vocabulary compacted), the chunks
    (ids renumbered) and the teacher's states for them, computed once."""
    arrays: Dict[str, np.ndarray]
    teacher_heads: int
    teacher_hidden: int
    train_ids: np.ndarray
    train_targets: np.ndarray
    held_ids: np.ndarray
    held_targets: np.ndarray

    @classmethod
    def compact(cls, arrays, source: Arch, train_ids, train_targets, held_ids, held_targets) -> "Data":
        """Keep only the embedding rows of the token ids the chunks use, and renumber the ids."""
        train_ids, held_ids = np.asarray(train_ids, np.int64), np.asarray(held_ids, np.int64)
        used = np.unique(np.concatenate([train_ids.ravel(), held_ids.ravel()]))
        renumber = np.zeros(int(used.max()) + 1, np.int64)
        renumber[used] = np.arange(len(used))
        arrays = dict(arrays)
        arrays["word_embed.0.weight"] = arrays["word_embed.0.weight"][used]
        return cls(arrays, source.num_heads, source.hidden_size, renumber[train_ids].astype(np.float32),
                   train_targets, renumber[held_ids].astype(np.float32), held_targets)

    @property
    def vocab_size(self) -> int:
        return len(self.arrays["word_embed.0.weight"])

    @cached_property
    def scale(self) -> float:
        """The teacher states' variance (bort.distillation.target_scale): e's unit, the same for
        every candidate, so computed once per process."""
        return kd.target_scale(self.train_targets)


def surrogate_errors(data: Data, cfg: ExtractConfig, point: Point, intervals: Sequence[int], ctx=None) -> List[List[float]]:
    """e(ξ) per θ (cfg.learning_rates) after each of `intervals` steps: one candidate built and its
    readout fitted once, then trained from that start under every θ."""
    import mxnet as mx
    from bort import device
    arch = Arch(*point, vocab_size=data.vocab_size, max_length=max(cfg.chunk_len, 2))
    kd.seed_everything(cfg.seed)
    student = kd.build_student(arch, data.arrays, cfg.init, ctx=ctx, teacher_heads=data.teacher_heads)
    proj = kd.build_projection(arch.hidden_size, data.teacher_hidden, ctx=ctx)
    with device.where(student)[0]:
        features = kd.batched(lambda x: kd.forward_hidden(student, x), data.train_ids[:cfg.fit_chunks])
    kd.fit_projection(proj, features, data.train_targets[:cfg.fit_chunks])
    params = student.collect_params()
    params.update(proj.collect_params())
    start = {name: p.data(p.list_ctx()[0]).copy() for name, p in params.items()}
    scale = data.scale
    out = []
    for lr in cfg.learning_rates:
        for name, p in params.items():
            p.set_data(start[name])
        trainer = device.trainer(params, mx.optimizer.Adam(learning_rate=lr), device.where(student))
        errors, done = [], 0
        for at in sorted(intervals):
            kd.kd_steps(student, proj, data.train_ids, data.train_targets, scale, at - done, cfg.batch_size, lr,
                        cfg.seed, trainer=trainer, start_step=done)
            done = at
            errors.append(kd.evaluate(student, proj, data.held_ids, data.held_targets, scale))
        out.append(errors)
    return out


_WORKER = {}


def _worker_start(data, cfg, on_gpu: bool = False):
    """A worker's set-up; `on_gpu`: a cluster's GPU worker (bort.cluster), whose candidates train
    on the contexts params.yaml `device` names there (the local pool's workers train on cpu(0))."""
    _WORKER.clear()
    _WORKER.update(data=data, cfg=cfg)
    if on_gpu:
        from bort import device
        _WORKER["ctx"] = device.contexts()
        device.mixed_precision(_WORKER["ctx"])


def _worker_stop():
    """A cluster worker's release when the extraction's pool closes (bort.cluster)."""
    _WORKER.clear()


def _worker_run(point, intervals):
    return point, surrogate_errors(_WORKER["data"], _WORKER["cfg"], point, intervals, _WORKER.get("ctx"))


class Journal:
    """Finished candidates as JSON lines, each under the run's fingerprint; lines of another
    fingerprint (other params, teacher or corpus) are dropped on open."""

    def __init__(self, path: Optional[Path], fingerprint: str):
        self.path, self.fingerprint, self.done = path, fingerprint, {}
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        kept = []
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue                       # a line cut by an interruption
                if entry.get("fingerprint") == fingerprint:
                    self.done[tuple(entry["point"])] = (entry["intervals"], entry["errors"])
                    kept.append(line)
        path.write_text("".join(k + "\n" for k in kept))

    def get(self, point, intervals) -> Optional[List[List[float]]]:
        """The errors journalled for `point` when read at the same `intervals`, else None."""
        at, errors = self.done.get(tuple(point), (None, None))
        return errors if at == list(intervals) else None

    def add(self, point, intervals, errors) -> None:
        self.done[tuple(point)] = (list(intervals), errors)
        if self.path is not None:
            with self.path.open("a") as f:
                f.write(json.dumps({"fingerprint": self.fingerprint, "point": list(point),
                                    "intervals": list(intervals), "errors": errors}) + "\n")


def fingerprint(cfg: ExtractConfig, ctx, *files: Path) -> str:
    """What the errors depend on: the extract parameters (not `workers`, which changes no error),
    the device and precision the candidates train on, and the bytes of `files` (the teacher's and
    the corpus's)."""
    from bort import device
    settings = {k: v for k, v in asdict(cfg).items() if k != "workers"}
    settings.update(device=device.label(ctx), amp=device.mixed_precision_on(ctx))
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


class BertFamily:
    """Sub-architectures of `source` (params.yaml `extract.space`) as an extraction family."""
    name = "bert"
    fields = ("depth", "num_heads", "hidden_size", "intermediate_size")

    def __init__(self, source: Arch, cfg: ExtractConfig, data: Optional[Data] = None, ctx=None,
                 journal: Optional[Journal] = None):
        self.source, self.cfg, self.data, self.ctx = source, cfg, data, ctx
        self.journal = journal or Journal(None, "")
        self.thetas = [{"lr": lr} for lr in cfg.learning_rates]

    def space(self) -> List[Point]:
        s = self.cfg.space
        return [a.tuple for a in search_space(self.source, s.depth, s.num_heads, s.hidden_size, s.intermediate_size)]

    def arch(self, point: Point) -> Arch:
        return self.source.extracted(point)

    def size(self, point: Point) -> int:
        return self.arch(point).effective_params

    def cost(self, point: Point) -> int:
        return self.arch(point).flops_per_seq(self.cfg.seq_len)

    def train_all(self, jobs, intervals, progress=None):
        from bort import device
        points = sorted({point for point, _ in jobs})
        todo = [p for p in points if self.journal.get(p, intervals) is None]
        if len(todo) < len(points):
            log.info("resuming: %d of %d candidates already trained", len(points) - len(todo), len(points))

        def finished(point, errors):
            self.journal.add(point, intervals, errors)
            if progress is not None:
                progress(point, errors)
        on_gpu, cluster = device.uses_gpu(self.ctx or []), workers.is_cluster(self.cfg.workers)
        if todo and on_gpu and not cluster:
            for point in todo:
                finished(point, surrogate_errors(self.data, self.cfg, point, intervals, self.ctx))
        elif todo:                             # what finished is journalled; a failure stops the rest
            setup, gpus = ((self.data, self.cfg, True), device.gpus_per_run()) if on_gpu else ((self.data, self.cfg), 0)
            with workers.pool(self.cfg.workers, _worker_start, setup, gpus, _worker_stop) as pool:
                for future in as_completed([pool.submit(_worker_run, point, list(intervals)) for point in todo]):
                    finished(*future.result())
        return {(point, k): self.journal.get(point, intervals)[k] for point, k in jobs}
