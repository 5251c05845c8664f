"""Which data trains, which data Agora reads, and which is held out for the reported scores.

Honest evaluation (README, "What the pipeline does"): Agora reads dev, so a dev score after Agora
is no longer a fair estimate. The scores we report come from data Agora never saw -- the labelled
test split (the embedded data), or, for the official files whose test labels are hidden, a fixed
seeded half of dev; the other half is Agora's. The int8 stage reads the same split, and the
prepare stage scores the TF-IDF floor on it.

Two rules make the held-out split hold on the official files, for every model and the floor
alike (our reading; issue 22 found both):
- A held-out unit whose input (`shape.inputs`) also occurs in the training split is dropped from
  the held-out split and counted (`dropped_train_overlap`), never removed from training: every
  model trains on the official training split, and the scores should measure inputs no model has
  trained on (official STS-B's train and dev share 6 sentence pairs). With the labelled test
  split, a test unit whose input occurs in dev is dropped too (`dropped_dev_overlap`): Agora reads
  all of dev there.
- Dev is split by group (`shape.groups`: a WSC text, a MultiRC question, a ReCoRD or RACE passage,
  and any rows with equal inputs), so no input is on both sides of the halves (official WSC's
  val.jsonl asks about one text in several rows).
"""
from __future__ import annotations

from typing import List, NamedTuple, Tuple

import numpy as np

from bort import tasks
from bort.errors import BortError
from bort.shapes import has_gold
from bort.tasks import Task

TEST = "test split (labelled; never seen by Agora)"
DEV_HALF = "held-out half of dev (seeded; never seen by Agora)"
UNLABELLED = "unlabelled test split: leaderboard submission only, no score"
SEED = 1234          # the dev halves are fixed: every model and every run splits dev alike


class Splits(NamedTuple):
    train: List[dict]
    agora_dev: List[dict]          # what Agora may read
    heldout: List[dict]            # what the reported scores are measured on
    note: str                      # which of the two, as the metrics and the report say it
    test: List[dict]               # the whole test split (for the leaderboard submission)
    dropped_train_overlap: int = 0  # held-out units left out because their input is in train
    dropped_dev_overlap: int = 0   # ... because it is in Agora's dev (test split only)
    dev_groups: int = 0            # the groups dev is split by (dev_half), or has (test)

    def counts(self) -> dict:
        """The rules' counts, as the metrics record them."""
        return {"dropped_train_overlap": self.dropped_train_overlap,
                "dropped_dev_overlap": self.dropped_dev_overlap, "dev_groups": self.dev_groups}


def drop_seen(shape, held: List[dict], seen: List[dict]) -> Tuple[List[dict], int]:
    """`held` without the units whose input occurs in `seen`, and how many were left out."""
    known = {shape.inputs(i) for i in seen}
    kept = [i for i in held if shape.inputs(i) not in known]
    return kept, len(held) - len(kept)


def splits(task: Task, directory, policy: str) -> Splits:
    """The splits of `task` from its official folder; `policy` is params.yaml `finetune.heldout`:
    test, dev_half, or auto (the labelled test split when there is one, else dev_half). A set
    without a dev split (the diagnostics) is scored on its test split when that is labelled
    (diagnostic-full.tsv), and only predicted for the leaderboard when it is not (diagnostic.tsv)."""
    def load(split):
        return tasks.load_split(task, directory, split) if split in task.splits else []
    train, dev, test = load("train"), load("dev"), load("test")
    labelled_test = [i for i in test if has_gold(i)]
    if not dev and not labelled_test:
        return Splits(train, [], [], UNLABELLED, test)
    if not dev:                    # a diagnostic set: no dev for Agora, scored on its test split
        mode = "test"
    elif policy == "auto":
        mode = "test" if labelled_test else "dev_half"
    else:
        mode = policy
    groups = task.shape.groups(dev)
    if mode == "test":
        if not labelled_test:
            raise BortError(f"finetune.heldout is 'test' but {task.name}'s test split has no labels; "
                            "expected 'dev_half' for the official files")
        agora_dev, held, note = dev, labelled_test, TEST
    else:
        agora_dev, held = task.shape.hold_out(dev, groups, np.random.RandomState(SEED))
        note = DEV_HALF
    held, in_train = drop_seen(task.shape, held, train)
    held, in_dev = drop_seen(task.shape, held, agora_dev)   # none with dev_half: inputs are grouped
    return Splits(train, agora_dev, held, note, test, in_train, in_dev, len(groups))
