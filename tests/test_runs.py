"""bort.finetune.runs: the runs of a task and their order; evaluate.summary: every seed's record
and the mean and spread over seeds."""
import dataclasses

import pytest

from bort import tasks
from bort.finetune import evaluate, runs
from bort.finetune.heldout import Splits


def test_agora_waits_for_bert_and_bort_of_its_seed():
    plan = runs.plan(["bert", "bort", "bort-agora"], [0, 1, 2])
    assert plan[:6] == [("bert", 0), ("bort", 0), ("bert", 1), ("bort", 1), ("bert", 2), ("bort", 2)]
    assert plan[6:] == [("bort-agora", 0), ("bort-agora", 1), ("bort-agora", 2)]
    assert runs.needs(("bort-agora", 1), plan) == [("bert", 1), ("bort", 1)]
    assert runs.needs(("bort", 1), plan) == []
    alone = runs.plan(["bort-agora"], [3])        # BERT's and Bort's runs read from the models folder
    assert alone == [("bort-agora", 3)] and runs.needs(alone[0], alone) == []


def test_summary_keeps_every_seed_and_averages_them():
    task = tasks.get_task("MRPC")
    data = Splits(train=[{}] * 10, agora_dev=[], heldout=[{}] * 4, note="test split", test=[])

    @dataclasses.dataclass
    class C:
        max_train: int = 0
    records = [{"seed": s, "scores": {"f1": f, "acc": a}, "task_score": (f + a) / 2, "heldout_examples": 4,
                "task": "MRPC", "model": "bert", "heldout": "x"}
               for s, f, a in ((0, 0.8, 0.6), (1, 0.6, 0.6), (2, 0.7, 0.9))]
    out = evaluate.summary(task, "bert", C(), data, records)
    assert out["seeds"] == [0, 1, 2] and [r["seed"] for r in out["runs"]] == [0, 1, 2]
    assert out["scores"] == pytest.approx({"f1": 0.7, "acc": 0.7})
    assert out["task_score"] == pytest.approx(0.7)
    assert out["seed_spread"]["sd"] == pytest.approx(0.1)              # sample sd of 0.7, 0.6, 0.8
    assert (out["seed_spread"]["min"], out["seed_spread"]["max"]) == pytest.approx((0.6, 0.8))
    assert out["train_examples"] == 10 and "task" not in out["runs"][0]
