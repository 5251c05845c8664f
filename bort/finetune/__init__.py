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
distilled student ("Bort"), and the student continued by Agora (bort.agora). Everything is
seeded (python, numpy, mxnet, batch order), so a run is repeatable.

Budget knobs (`freeze_embeddings`, `frozen_layers`): fine-tuning on a few hundred examples is
step-bound, and most of a step is spent where it buys least -- the Adam update of the word
embeddings (5.9M of the embedded student's 6.5M parameters) and the backward pass through the
lowest layers. With the embeddings (and optionally the lowest `frozen_layers` cells) frozen, their
output is a fixed function of the row, so it is computed once per row, in inference mode, and
cached; every epoch then runs only the trainable top. Paper scale sets both off, as the
companion code fine-tunes everything.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bort.params import ParamError, Section, positive

#: the compared models, in the order they are trained (Agora needs the other two)
MODELS = ("bert", "bort", "bort-agora")
#: the pretrained encoder each model starts from: the source (teacher) or the distilled student
STARTS_FROM = {"bert": "teacher", "bort": "student", "bort-agora": "student"}


class Layout:
    """Where the fine-tuning stages keep their outputs: <models>/<model>/<task>/ (weights and the
    leaderboard submission) and <metrics>/<model>/<task>.json; the encoders they start from."""
    #: the command-line paths of the fine-tuning stages (bort.cli), as their dvc.yaml `cmd` names them
    PATHS = {"data": "the task folders (prepare stage)", "teacher": "the source model folder (BERT)",
             "student": "the distilled student folder (Bort)",
             "models": "fine-tuned models: <models>/<model>/<task>/",
             "metrics": "metrics: <metrics>/<model>/<task>.json"}

    def __init__(self, teacher=None, student=None, models=None, metrics=None):
        self.encoders = {"teacher": teacher and Path(teacher), "student": student and Path(student)}
        self.models, self.metrics = models and Path(models), metrics and Path(metrics)

    def encoder(self, which: str) -> Path:
        return self.encoders[STARTS_FROM[which]]

    def model(self, which: str, task) -> Path:
        return self.models / which / task.name

    def metrics_file(self, which: str, task) -> Path:
        return self.metrics / which / f"{task.name}.json"

    @classmethod
    def from_args(cls, args) -> "Layout":
        return cls(args.teacher, args.student, args.models, args.metrics)


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
    seed: int

    def validate(self) -> None:
        positive(self, "epochs", "batch_size", "max_len", "max_len_passage")
        if self.max_train < 0:
            raise ParamError("max_train", f"expected 0 (all) or a positive integer, got {self.max_train}")
        if self.frozen_layers < 0:
            raise ParamError("frozen_layers", f"expected 0 or more, got {self.frozen_layers}")
        if self.frozen_layers and not self.freeze_embeddings:
            raise ParamError("frozen_layers", "> 0 needs freeze_embeddings: true")


@dataclass(frozen=True)
class AgoraConfig(Section):
    """params.yaml `finetune.agora` (bort.agora)."""
    rounds: int = 2
    round_epochs: int = 2          # epochs of further fine-tuning on the augmented set per round
    neighbours: int = 2            # new points per replaceable segment of each miss
    replay: bool = True            # every round trains on all earlier rounds' points again
    max_new_per_round: int = 300
    seed: int = 0

    def validate(self) -> None:
        positive(self, "round_epochs", "neighbours", "max_new_per_round")
        if self.rounds < 0:
            raise ParamError("rounds", f"expected 0 (no Agora rounds) or more, got {self.rounds}")


@dataclass(frozen=True)
class FinetuneSection(Section):
    """params.yaml `finetune`."""
    heldout: Literal["auto", "test", "dev_half"]   # auto: the labelled test split if any, else dev_half
    bert: FinetuneConfig           # the source model ("BERT" in the embedded tables)
    bort: FinetuneConfig           # the distilled student, with and without Agora
    agora: AgoraConfig

    def model(self, which: str) -> FinetuneConfig:
        """The settings model `which` fine-tunes with (Bort + Agora continues with Bort's)."""
        return {"bert": self.bert, "bort": self.bort, "bort-agora": self.bort}[which]
