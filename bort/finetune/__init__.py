"""Fine-tuning one linear classifier on an encoder, for every task shape: the settings and models.

The companion code (alexa/bort finetune_bort.py) attaches dropout -> dense+tanh -> dropout -> dense
to the encoder and trains it on the task (de Wynter & Perry, arXiv 2010.10499). The task's shape
(bort.shapes) decides the rows, the head's outputs, the loss and the decoding; the package splits
the rest by concept:

  bort.finetune.heldout   which data trains, which Agora reads, which is held out for the scores
  bort.finetune.head      the classifier on the encoder (pooling, the companion code's head)
  bort.finetune.frozen    the fixed lower part (embeddings, lowest cells), cached per row, run by
                          MXNet or ONNX Runtime
  bort.finetune.model     `TaskModel`: rows -> scores -> loss / predictions; int8 inference
  bort.finetune.trainer   the training loop (Adam, warm-up + linear decay, seeded order)
  bort.finetune.evaluate  held-out scores, leaderboard submission, the metrics file

Three models are compared on every task (`MODELS`): the fine-tuned source model ("BERT"), the
distilled student ("Bort"), and the student continued by Agora (bort.agora). Every model is
fine-tuned once per seed of params.yaml `finetune.seeds`: a run's seed decides the head's
initialisation, the batch order and the dropout masks (python, numpy, mxnet), so each run is
repeatable, and the spread over seeds is the fine-tuning noise the report shows.

Budget knobs (`freeze_embeddings`, `frozen_layers`): fine-tuning on a few hundred examples is
step-bound, and most of a step is spent where it buys least -- the Adam update of the word
embeddings (5.9M of the embedded student's 6.5M parameters) and the backward pass through the
lowest layers. With the embeddings (and optionally the lowest `frozen_layers` cells) frozen, their
output is a fixed function of the row, so it is computed once per row, in inference mode, and
cached; every epoch then runs only the trainable top. Paper scale sets both off, as the
companion code fine-tunes everything.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Literal, Optional, Tuple, Union

from bort.params import ParamError, Section, positive, workers as check_workers

#: the compared models, in the order they are trained (Agora needs the other two)
MODELS = ("bert", "bort", "bort-agora")
#: the pretrained encoder each model starts from: the source (teacher) or the distilled student
STARTS_FROM = {"bert": "teacher", "bort": "student", "bort-agora": "student"}


def seed_dir(seed: int) -> str:
    """The sub-folder of one seed's run."""
    return f"seed-{seed}"


class Layout:
    """Where the fine-tuning stages keep their outputs: <models>/<model>/<task>/seed-<s>/ (the
    trained weights, the held-out predictions, the leaderboard submission) and
    <metrics>/<model>/<task>.json (every seed); the encoders they start from; the checkpoints a
    killed run resumes from, <checkpoints>/<model>/<task>/seed-<s>/ (the stages that train)."""
    #: the command-line paths of the fine-tuning stages (bort.cli), as their dvc.yaml `cmd` names them
    PATHS = {"data": "the task folders (prepare stage)", "teacher": "the source model folder (BERT)",
             "student": "the distilled student folder (Bort)",
             "models": "fine-tuned models: <models>/<model>/<task>/",
             "metrics": "metrics: <metrics>/<model>/<task>.json"}
    #: ... and of the stage that trains (finetune@)
    CHECKPOINTS = {"checkpoints": "checkpoints (persist; a killed run resumes): <checkpoints>/<model>/<task>/seed-<s>/"}
    #: the constructor's arguments
    FIELDS = ("teacher", "student", "models", "metrics", "checkpoints")

    def __init__(self, teacher=None, student=None, models=None, metrics=None, checkpoints=None):
        self.encoders = {"teacher": teacher and Path(teacher), "student": student and Path(student)}
        self.models, self.metrics = models and Path(models), metrics and Path(metrics)
        self.checkpoints = checkpoints and Path(checkpoints)

    def encoder(self, which: str) -> Path:
        return self.encoders[STARTS_FROM[which]]

    def model(self, which: str, task, seed: Optional[int] = None) -> Path:
        """The task's folder of model `which`, or its run with `seed`."""
        folder = self.models / which / task.name
        return folder if seed is None else folder / seed_dir(seed)

    def metrics_file(self, which: str, task) -> Path:
        return self.metrics / which / f"{task.name}.json"

    def checkpoint(self, which: str, task, seed: Optional[int] = None) -> Optional[Path]:
        """None where the stage keeps no checkpoints."""
        folder = self.checkpoints and self.checkpoints / which / task.name
        return folder if folder is None or seed is None else folder / seed_dir(seed)

    @classmethod
    def from_args(cls, args) -> "Layout":
        return cls(args.teacher, args.student, args.models, args.metrics, getattr(args, "checkpoints", None))


@dataclass(frozen=True)
class FinetuneConfig(Section):
    """params.yaml `finetune.bert` / `finetune.bort`: one model's fine-tuning."""
    epochs: int
    batch_size: int                # encoded rows per step (instances x options / candidates)
    lr: float
    weight_decay: float
    warmup_fraction: float
    dropout: float
    max_len: int
    max_len_passage: int           # for tasks with passages (`Task.long_inputs`)
    max_train: int                 # 0: all training examples
    pooling: Literal["cls", "mean"]    # the companion code's [CLS] state, or the mean over real tokens
    freeze_embeddings: bool        # keep the embeddings fixed and cache their output per row
    frozen_layers: int             # ... and the lowest this many transformer cells
    frozen_runtime: Literal["mxnet", "onnxruntime"]   # what computes the frozen part

    def validate(self) -> None:
        positive(self, "epochs", "batch_size", "max_len", "max_len_passage")
        if self.max_train < 0:
            raise ParamError("max_train", f"expected 0 (all) or a positive integer, got {self.max_train}")
        if self.frozen_layers < 0:
            raise ParamError("frozen_layers", f"expected 0 or more, got {self.frozen_layers}")
        if self.frozen_layers and not self.freeze_embeddings:
            raise ParamError("frozen_layers", "> 0 needs freeze_embeddings: true")


Setting = Union[bool, int, float, str]
Choice = Tuple[Tuple[str, Setting], ...]       # one point of a search grid, as sorted (key, value) pairs


def grid_points(grid: Dict[str, List[Setting]]) -> List[Choice]:
    """Every point of a grid (key -> values): the product over its keys (sorted), each key's values
    in the order listed (the first point wins a tie); [()] -- one point, no change -- when empty."""
    keys = sorted(grid)
    return [tuple(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))] or [()]


def check_grid(grid: Dict[str, List[Setting]], allowed, where: str, what: str) -> None:
    """A grid's keys are `what` (one of `allowed`); its lists non-empty and distinct."""
    for key, values in sorted(grid.items()):
        if key not in allowed:
            raise ParamError(f"{where}.{key}", f"expected {what}: {sorted(allowed)}")
        if not values or len(set(map(repr, values))) != len(values):
            raise ParamError(f"{where}.{key}", f"expected a non-empty list of distinct values, got {values}")


@dataclass(frozen=True)
class AgoraConfig(Section):
    """params.yaml `finetune.agora` (bort.agora)."""
    rounds: int = 2
    round_epochs: int = 1          # epochs of further fine-tuning on the augmented set per round
    neighbours: int = 2            # new points per replaceable segment of each miss
    replay: bool = True            # every round trains on all accepted rounds' points again
    max_new_per_round: int = 300
    theta: Dict[str, List[Setting]] = field(default_factory=lambda: {"lr": [0.0001, 0.0003]})  # Θ
    min_similarity: float = 0.5    # a neighbour's cosine similarity to the text it replaces, at least
    min_certainty: float = 0.5     # the labeler's certainty (0 chance, 1 sure) a new point needs

    THETA_KEYS = ("lr", "round_epochs")     # what a θ may set: a round's peak rate and its epochs

    def validate(self) -> None:
        positive(self, "round_epochs", "neighbours", "max_new_per_round")
        if self.rounds < 0:
            raise ParamError("rounds", f"expected 0 (no Agora rounds) or more, got {self.rounds}")
        check_grid(self.theta, self.THETA_KEYS, "theta", "a setting a θ may change")
        for key in ("min_similarity", "min_certainty"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ParamError(key, f"expected a number in [0, 1], got {getattr(self, key)}")

    def thetas(self) -> List[Choice]:
        """Θ's points, in `grid_points` order."""
        return grid_points(self.theta)


HELDOUT = Literal["auto", "test", "dev_half"]     # params.yaml finetune.heldout


@dataclass(frozen=True)
class SizeRule(Section):
    """One entry of a preset's `sizes`: settings for tasks with more training instances than `above`."""
    above: int
    set: Dict[str, Setting]


@dataclass(frozen=True)
class Preset(Section):
    """params.yaml `finetune.presets.<name>`: changes to `finetune.bert` / `finetune.bort`, then
    per task size (the official training split's instances, before `max_train`): every rule whose
    `above` the task exceeds applies, in increasing `above`. `search` is the grid each model's
    settings are chosen from, per task, on Agora's dev split (bort.finetune.runs): key -> values,
    every combination tried; a model without a grid trains with its settings as they are."""
    bert: Dict[str, Setting]
    bort: Dict[str, Setting]
    sizes: List[SizeRule]
    search: Dict[str, Dict[str, List[Setting]]]

    def validate(self) -> None:
        for which, grid in sorted(self.search.items()):
            if which not in ("bert", "bort"):
                raise ParamError(f"search.{which}", "expected a model: bert or bort (Bort + Agora continues Bort's)")
            check_grid(grid, FinetuneConfig.__dataclass_fields__, f"search.{which}", f"a setting of finetune.{which}")

    def grid(self, which: str) -> List[Choice]:
        """Every point of model `which`'s grid: the product over its keys (sorted), each key's values
        in the order params.yaml lists them (the first point wins a tie); [()] -- one point, no
        change -- without a grid."""
        return grid_points(self.search.get(which, {}))


@dataclass(frozen=True)
class FinetuneSection(Section):
    """params.yaml `finetune`."""
    heldout: HELDOUT               # auto: the labelled test split if any, else dev_half
    seeds: List[int]               # every model is fine-tuned once per seed (Agora included)
    workers: Union[int, str]       # one-thread processes the runs are spread over (bort.workers), or a Dask cluster
    preset: str                    # the entry of `presets` applied to bert / bort (README "Real data")
    search_rung: float             # the share of its epochs a search candidate trains before it is scored
    bert: FinetuneConfig           # the source model ("BERT" in the embedded tables)
    bort: FinetuneConfig           # the distilled student, with and without Agora
    agora: AgoraConfig
    presets: Dict[str, Preset]

    def validate(self) -> None:
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise ParamError("seeds", f"expected a list of distinct non-negative integers, got {self.seeds}")
        check_workers(self)
        if not 0 < self.search_rung <= 1:
            raise ParamError("search_rung", f"expected a share of the epochs in (0, 1], got {self.search_rung}")
        if self.preset not in self.presets:
            raise ParamError("preset", f"expected one of {sorted(self.presets)}, got {self.preset!r}")
        for name, preset in sorted(self.presets.items()):       # every combination, before any work
            for which in ("bert", "bort"):
                for size in [None] + [rule.above + 1 for rule in preset.sizes]:
                    for choice in preset.grid(which):
                        self._settings(which, size, name, choice)

    def model(self, which: str, train_size: int, choice: Choice = ()) -> FinetuneConfig:
        """The settings model `which` fine-tunes with on a task of `train_size` training instances
        (Bort + Agora continues with Bort's): finetune.bert / .bort, changed by the preset, then by
        `choice`, a point of the preset's search grid (`grid`)."""
        return self._settings(base_model(which), train_size, self.preset, choice)

    def rung(self, epochs: int) -> int:
        """The epochs a search candidate of a run of `epochs` trains before it is scored (at least 1)."""
        return max(1, math.ceil(self.search_rung * epochs))

    def grid(self, which: str) -> List[Choice]:
        """The search grid of model `which` (Bort + Agora: none; it continues Bort's choice)."""
        return self.presets[self.preset].grid(which) if which in ("bert", "bort") else [()]

    def _settings(self, which: str, train_size: Optional[int], name: str, choice: Choice = ()) -> FinetuneConfig:
        preset = self.presets[name]
        values, where = {**asdict(getattr(self, which)), **getattr(preset, which)}, f"presets.{name}.{which}"
        for k, rule in sorted(enumerate(preset.sizes), key=lambda kr: kr[1].above):
            if train_size is not None and train_size > rule.above:      # None: the preset's base only
                values.update(rule.set)
                where = f"presets.{name}.sizes[{k}].set"
        if choice:                  # the preset's own values are checked first, each named where it is
            FinetuneConfig.build(values, where)
            values.update(choice)
            where = f"presets.{name}.search.{which}"
        return FinetuneConfig.build(values, where)


def base_model(which: str) -> str:
    """The model whose settings `which` trains with: Bort + Agora continues Bort's."""
    return "bort" if which == "bort-agora" else which


def label(choice: Choice) -> str:
    """A grid point as a folder name and a report cell: 'lr=0.0001,epochs=3' ('default': none)."""
    return ",".join(f"{k}={v}" for k, v in choice) or "default"
