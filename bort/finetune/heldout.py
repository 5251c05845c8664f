"""Which data trains, which data Agora reads, and which is held out for the reported scores.

Honest evaluation (README, "What the pipeline does"): Agora reads dev, so a dev score after Agora
is no longer a fair estimate. The scores we report come from data Agora never saw -- the labelled
test split (the embedded data), or, for the official files whose test labels are hidden, a fixed
seeded half of dev; the other half is Agora's. The int8 stage reads the same split.
"""
from __future__ import annotations

from typing import List, NamedTuple

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
    if mode == "test":
        if not labelled_test:
            raise BortError(f"finetune.heldout is 'test' but {task.name}'s test split has no labels; "
                            "expected 'dev_half' for the official files")
        return Splits(train, dev, labelled_test, TEST, test)
    rng = np.random.RandomState(SEED)
    agora_dev, held = task.shape.hold_out(dev, rng.permutation(len(dev)), rng)
    return Splits(train, agora_dev, held, DEV_HALF, test)
