"""bort.finetune.runs: the runs of a task and their order; evaluate.summary: every seed's record
and the mean and spread over seeds."""
import dataclasses

import pytest

from bort import tasks
from bort.finetune import MODELS, evaluate, runs
from bort.finetune.heldout import Splits


LR = {"bert": [(("lr", 1e-4),), (("lr", 3e-4),)], "bort": [(("lr", 3e-4),), (("lr", 1e-3),)], "bort-agora": [()]}


def test_the_search_comes_first_and_agora_waits_for_bert_and_bort_of_its_seed():
    plan = runs.Plan(["bert", "bort", "bort-agora"], [0, 1, 2], LR)
    assert plan.candidates() == [("bert", 0, (("lr", 1e-4),)), ("bert", 0, (("lr", 3e-4),)),
                                 ("bort", 0, (("lr", 3e-4),)), ("bort", 0, (("lr", 1e-3),))]
    assert plan.total() == 4 + 3 + 3 + 3          # candidates to their rung, every seed of every model
    assert plan.ready({}, set()) == []            # nothing before a choice
    bert = (("lr", 3e-4),)                        # the first seed's run continues the chosen candidate
    assert plan.ready({"bert": bert}, set()) == [("bert", 0, bert), ("bert", 1, bert), ("bert", 2, bert)]
    both = plan.ready({"bert": bert, "bort": (("lr", 1e-3),)}, {("bert", 0), ("bort", 0), ("bert", 1)})
    assert ("bort-agora", 0, ()) in both and ("bort-agora", 1, ()) not in both
    alone = runs.Plan(["bort-agora"], [3], LR)    # BERT's and Bort's runs read from the models folder
    assert alone.candidates() == [] and alone.ready({}, set()) == [("bort-agora", 3, ())]


def test_no_grid_means_no_search():
    plan = runs.Plan(["bert", "bort"], [0, 1], {"bert": [()], "bort": [()]})
    assert plan.candidates() == [] and plan.total() == 4
    assert plan.ready({"bert": (), "bort": ()}, set()) == [("bert", 0, ()), ("bort", 0, ()), ("bert", 1, ()),
                                                           ("bort", 1, ())]


def test_the_choice_is_the_best_dev_score_and_the_first_on_a_tie():
    task = tasks.get_task("RTE")
    grid = [(("lr", 1e-4),), (("lr", 3e-4),), (("lr", 1e-3),)]

    def record(dev, held):                  # the held-out score must play no part in the choice
        return {"seed": 0, "agora_dev_scores": {"acc": dev}, "scores": {"acc": held}}
    best, search = runs.choose(task, "bert", grid, {grid[0]: record(0.6, 0.9), grid[1]: record(0.7, 0.5),
                                                   grid[2]: record(0.7, 0.6)})
    assert best == grid[1] and search["chosen"] == {"lr": 3e-4}
    assert [c["agora_dev_task_score"] for c in search["candidates"]] == [0.6, 0.7, 0.7]
    assert "scores" not in search["candidates"][0]


def test_a_grid_point_changes_the_settings_and_a_wrong_key_is_one_line(tmp_path):
    from bort.finetune import FinetuneSection
    from bort.params import load
    section = FinetuneSection.load("finetune")
    point = section.grid("bert")[-1]
    assert section.model("bert", 400, point).lr == dict(point)["lr"]
    assert section.grid("bort-agora") == [()]
    data = load()["finetune"]
    data["presets"]["embedded"]["search"]["bert"] = {"lrr": [0.1, 0.2]}
    with pytest.raises(Exception, match=r"search.bert.lrr: expected a setting of finetune.bert"):
        FinetuneSection.build(data, "finetune")


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


def test_the_threshold_is_fitted_on_the_given_split_and_turns_a_zero_f1a_into_a_ranking():
    """MultiRC: no answer reaches P = 0.5, yet the true answers rank first; the fitted threshold
    predicts them (F1a and EM 1 here), where the argmax predicts nothing (F1a 0)."""
    from types import SimpleNamespace

    from bort.finetune.model import TaskModel
    task = tasks.get_task("MultiRC")
    probs = [0.31, 0.12, 0.28, 0.05, 0.33, 0.10]
    gold = [1, 0, 1, 0, 1, 0]
    model = SimpleNamespace(task=task, threshold=None, positive_probability=lambda instances: probs)
    fitted = TaskModel.fit_threshold(model, [{"label": y, "group": str(k // 2)} for k, y in enumerate(gold)])
    assert fitted["argmax_score"] == 0.0 and fitted["fitted_score"] == 1.0
    assert 0.12 < model.threshold < 0.28 and fitted["positive_rate"] == 0.5


@pytest.mark.parametrize("grids, trained", [
    (LR, 4 + 3 + 3 + 3),                                             # the search, then every seed
    ({"bert": [()], "bort": [()], "bort-agora": [()]}, 9),           # no grid: the runs as they are
])
def test_run_all_searches_then_trains_the_choice_and_agora_last(monkeypatch, grids, trained):
    calls, rungs = [], []

    def execute(which, seed, choice):
        calls.append((which, seed, choice))
        if which == "bort-agora":                # BERT's and Bort's runs of its seed exist already
            assert {("bert", seed), ("bort", seed)} <= {(m, s) for m, s, _ in calls}
        else:                                    # after its model's search
            assert len([r for r in rungs if r[0] == which]) == len(grids[which]) - (len(grids[which]) == 1)
        return {"seed": seed, "scores": {"acc": 0.5}, "agora_dev_scores": {"acc": 0.7}}

    def candidate(which, seed, choice):
        rungs.append((which, seed, choice))
        calls.append((which, seed, choice))
        lr = dict(choice).get("lr", 0)
        return {"seed": seed, "epochs": 2, "of": 3, "agora_dev_scores": {"acc": 0.9 if lr == 3e-4 else 0.6}}
    monkeypatch.setattr(runs, "execute", execute)
    monkeypatch.setattr(runs, "candidate", candidate)
    monkeypatch.setattr(runs, "start", lambda *a: None)
    paths = {k: "x" for k in ("teacher", "student", "models", "metrics", "checkpoints")}
    done, searches = runs.run_all("RTE", paths, list(MODELS), [0, 1, 2], 1,
                                  True, grids)
    assert len(calls) == trained and sorted(done) == sorted((m, s) for m in MODELS for s in (0, 1, 2))
    if grids is LR:                              # lr 3e-4 wins on dev for both models, at the rung
        assert searches["bert"]["chosen"] == {"lr": 3e-4} and searches["bort"]["chosen"] == {"lr": 3e-4}
        assert searches["bert"]["scored_on"] == "Agora's dev split (task score); first seed, after 2 of 3 epochs"
        assert len(rungs) == 4 and done[("bert", 0)]["agora_dev_scores"] == {"acc": 0.7}   # the full run's
        assert ("bert", 0, (("lr", 3e-4),)) in calls[4:] and ("bert", 1, (("lr", 1e-4),)) not in calls
    else:
        assert searches == {} and rungs == []
