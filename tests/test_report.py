"""The report's tables: a suite score only over the whole suite."""
from bort import report, tasks


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
