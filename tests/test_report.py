"""The report's tables: a suite score only over the whole suite."""
import pytest

from bort import report, report_runs, tasks


def test_suite_score_needs_every_task_of_the_suite():
    floor = {t.name: {m: 0.5 for m in t.metrics} for t in tasks.TASKS.values()}
    names = [t.name for t in tasks.TASKS.values()]
    _, rows = report.task_rows("superglue", {}, floor, names)
    assert rows[-1][3] == "50.0" and rows[-1][2] == "8 tasks"          # AX-b, AX-g left out
    _, rows = report.task_rows("superglue", {}, floor, ["BoolQ", "CB"])
    assert [r[0] for r in rows[:-2]] == ["BoolQ", "CB"] and rows[-1][3] == ""
    assert rows[-2][:4] == ["mean of the 2 tasks shown", "mean of task scores", "not the suite score", "50.0"]


def test_unlabelled_diagnostic_says_submission_only():
    record = {"scores": None, "task_score": None, "heldout": "unlabelled", "heldout_examples": 0}
    finetune = {"bert": {"AX": record}}
    _, rows = report.task_rows("glue", finetune, {}, ["MNLI-m", "AX"])
    ax = next(r for r in rows if r[0] == "AX")
    assert ax[4] == "unlabelled: submission only"


def _record(task, score, seeds=(0, 1, 2), spread=0.01):
    t = tasks.get_task(task)
    return {"scores": {m: score for m in t.metrics}, "task_score": score, "heldout": "test", "heldout_examples": 200,
            "seeds": list(seeds), "seed_spread": {"sd": spread, "min": score - spread, "max": score + spread},
            "runs": [{"seed": s, "task_score": score + (s - 1) * spread} for s in seeds]}


def _test(difference, significant):
    return {"difference": difference, "p_value": 0.01 if significant else 0.5, "significant": significant}


def test_a_cell_shows_spread_interval_and_marks():
    finetune = {"bert": {"RTE": _record("RTE", 0.8)}, "bort": {"RTE": _record("RTE", 0.7)},
                "bort-agora": {"RTE": _record("RTE", 0.72)}}
    interval = {"score": 0.7, "low": 0.65, "high": 0.75}
    significance = {"tasks": {"RTE": {"bert": interval, "bort": dict(interval, one_class=True),
                                      "bort-agora": interval, "bert_vs_bort": _test(0.1, True),
                                      "agora_vs_bort": _test(0.02, False)}}}
    floor = {"RTE": {"acc": 0.9}}
    _, rows = report.task_rows("glue", finetune, floor, ["RTE"], significance)
    rte = rows[0]
    assert rte[3] == "90.0 ‡"                                  # the floor beats every model
    assert rte[4] == "80.0 ±1.0 [65.0, 75.0]"
    assert rte[5] == "70.0 ±1.0 [65.0, 75.0]† (one class)"    # significantly different from BERT
    assert rte[6] == "72.0 ±1.0 [65.0, 75.0]"                  # not significantly different from Bort


def test_counts_say_how_many_wins_are_significant():
    significance = {"config": {"test": "approximate randomisation", "seeds": [0, 1, 2], "resamples": 99,
                               "alpha": 0.05, "confidence": 0.95, "interval": "bootstrap percentile", "seed": 0},
                    "tasks": {"RTE": {"agora_vs_bort": _test(0.05, True), "bert_vs_bort": _test(0.1, True)},
                              "CoLA": {"agora_vs_bort": _test(0.01, False), "bert_vs_bort": _test(-0.1, True)},
                              "MRPC": {"agora_vs_bort": _test(-0.02, True), "bert_vs_bort": _test(0.0, False)}}}
    finetune = {m: {n: {} for n in ("RTE", "CoLA", "MRPC")} for m in ("bert", "bort", "bort-agora")}
    lines = report.significance_counts(significance, finetune, ["RTE", "CoLA", "MRPC"])
    assert lines[0].startswith("Bort + Agora beats Bort alone on 2 of 3 tasks, significantly on 1 (RTE); "
                               "it is significantly worse on 1 (MRPC)")
    assert lines[1].startswith("BERT (the source) beats Bort on 1 of 3 tasks, significantly on 1 (RTE)")


def test_seed_rows_give_each_suite_score_per_seed():
    names = [t.name for t in tasks.suite_tasks("race")]
    finetune = {m: {n: _record(n, 0.5) for n in names} for m in ("bert", "bort", "bort-agora")}
    header, rows = report.seed_rows(finetune, names)
    assert header == ["suite", "model", "seed 0", "seed 1", "seed 2", "mean", "sd over seeds"]
    assert rows[0][2:] == ["49.0", "50.0", "51.0", "50.0", "1.0"]


def test_degenerate_cells_are_listed_with_their_measured_cause():
    finetune = {m: {"MultiRC": _record("MultiRC", 0.1), "RTE": _record("RTE", 0.7)} for m in ("bert", "bort", "bort-agora")}
    for seed, run in enumerate(finetune["bert"]["MultiRC"]["runs"]):
        run["epoch_losses"] = [0.7, 0.68 + seed / 100]          # ln 2 = 0.69: it did not train
    for run in finetune["bort"]["MultiRC"]["runs"]:
        run["epoch_losses"] = [0.5, 0.2]
    finetune["bort-agora"]["MultiRC"] = _record("MultiRC", 0.15)       # the best model, below the floor
    significance = {"tasks": {"MultiRC": {**{m: {"one_class": True} for m in ("bert", "bort")},
                                          "bort-agora": {"low": 0.05, "high": 0.25}},
                              "RTE": {"bert": {"one_class": False}}}}
    floor = {"MultiRC": {"f1a": 0.2, "em": 0.2}, "RTE": {"acc": 0.5}}
    lines = report.degenerate_cells(significance, finetune, floor, ["MultiRC", "RTE"])
    assert lines[0].startswith("MultiRC, BERT (source, fine-tuned): one class for every held-out instance in every seed; "
                               "the model did not train (last-epoch training loss 0.68, 0.69, 0.70 against 0.69")
    assert lines[1].startswith("MultiRC, Bort (student): one class") and "trained, yet predicts one class here" in lines[1]
    assert lines[2].startswith("MultiRC: the TF-IDF floor (20.0) beats every model; it lies inside the best model's "
                               "interval (Bort + Agora, [5.0, 25.0]): sampling noise")
    assert len(lines) == 3 and report.degenerate_cells({}, {}, {}, ["RTE"]) == []


def test_a_cell_below_chance_is_listed():
    """RACE has four options: an interval wholly under 25 is flagged; one reaching it, or a task
    whose chance depends on the label balance (F1), is not."""
    significance = {"tasks": {"RACE-high": {"bert": {"low": 0.6, "high": 0.8}, "bort": {"low": 0.1, "high": 0.2},
                                            "bort-agora": {"low": 0.15, "high": 0.25}},
                              "MRPC": {"bort": {"low": 0.1, "high": 0.2}}}}
    lines = report.degenerate_cells(significance, {}, {}, ["RACE-high", "MRPC"])
    assert lines == ["RACE-high, Bort (student): below chance -- its interval [10.0, 20.0] lies under 25.0, what a "
                     "uniform guess scores: its predictions run against the labels, a rule learned that the held-out "
                     "rows do not follow."]
    assert report.chance(tasks.TASKS["CoLA"]) == 0.0 and report.chance(tasks.TASKS["MNLI-m"]) == 1 / 3


def test_the_witness_verdict_follows_the_measurements():
    def record(score, low, losses):
        return {"task_score": score, "interval": {"low": low, "high": score + 0.05}, "epoch_losses": losses,
                "floor": 0.5, "majority": 0.55, "learnable": low > 0.55}
    witness = {"tasks": {"RTE": record(0.8, 0.7, [0.5, 0.1]), "WSC": record(0.5, 0.42, [0.69, 0.2]),
                         "WiC": record(0.53, 0.46, [0.7, 0.693]), "BoolQ": record(0.55, 0.5, [0.7, 0.69])}}
    significance = {"tasks": {"WiC": {"bort": {"low": 0.58}}, "BoolQ": {"bort": {"low": 0.5}}}}
    _, rows = report_runs.witness_rows(witness, {}, significance)
    verdicts = {row[0]: row[-1] for row in rows}
    assert verdicts == {"RTE": "yes: the witness learns it", "BoolQ": "unknown: the witness does not fit its training "
                        "rows, and no model is above chance", "WiC": "yes: Bort (student) learns it",
                        "WSC": "no: at chance by construction (the witness fits its training rows)"}


def test_the_summary_holds_scores_only_and_a_suite_only_when_all_its_tasks_ran():
    race = ["RACE-middle", "RACE-high"]
    finetune = {m: {"RACE-middle": _record("RACE-middle", 0.5 + k / 10), "RACE-high": _record("RACE-high", 0.3)}
                for k, m in enumerate(("bert", "bort", "bort-agora"))}
    significance = {"suites": {"race": {"bert": {"low": 0.3, "high": 0.5, "score": 0.4},
                                        "bert_vs_bort": _test(-0.05, False)}}}
    out = report.summary(finetune, significance, race)
    assert out["race"] == pytest.approx({"bert": 40.0, "bort": 45.0, "bort-agora": 50.0})   # mean of task scores
    assert out["intervals"] == {"race": {"bert": {"low": 30.0, "high": 50.0}}}
    assert out["tests"] == {"race": {"bert_vs_bort": {"difference": -5.0, "p_value": 0.5}}}
    assert out["tasks"]["RACE-high"] == {"bert": 30.0, "bort": 30.0, "bort-agora": 30.0}
    partial = report.summary(finetune, significance, ["RACE-high"])     # a subset: no suite score
    assert "race" not in partial and set(partial["tasks"]) == {"RACE-high"}


def test_only_measurements_are_declared_as_dvc_metrics():
    """Per-run records (settings, seeds, search candidates) are outputs, not metrics, so
    `dvc metrics diff` after a fine-tuning change prints the summary's scores only."""
    import yaml
    from conftest import ROOT
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    declared = {path for body in stages.values() for entry in (body.get("metrics") or body.get("do", {}).get("metrics")
                                                                or []) for path in entry}
    assert "metrics/summary.json" in declared
    assert not {"metrics/significance.json", "metrics/diagnostics.json", "metrics/int8.json"} & declared
    assert not any(p.startswith("metrics/finetune/") for p in declared)


def test_a_significant_agora_loss_gets_its_measured_cause():
    rounds = [{"accepted": True, "accept_before": 0.5, "accept_after": 0.56}, {"accepted": False}]
    finetune = {"bort": {"CoLA": {"runs": [{"seed": 0, "task_score": 0.64}]}},
                "bort-agora": {"CoLA": {"runs": [{"seed": 0, "task_score": 0.55, "agora_rounds": rounds}]}}}
    significance = {"tasks": {"CoLA": {"agora_vs_bort": {"difference": -0.09, "p_value": 0.001, "significant": True}},
                              "RTE": {"agora_vs_bort": {"difference": 0.05, "p_value": 0.001, "significant": True}}}}
    lines = report_runs.agora_losses(significance, finetune)
    assert len(lines) == 1 and lines[0].startswith("CoLA: Bort + Agora is below Bort (-9.0, p = 0.001); seed 0: "
                                                   "1 round(s) accepted, +6.0 on the acceptance half, held-out 64.0 -> 55.0")
