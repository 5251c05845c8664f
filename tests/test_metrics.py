
import pytest

from bort import metrics as M
from bort import tasks


def test_classification_metrics_by_hand():
    y, p = [1, 1, 0, 0, 1], [1, 0, 0, 1, 1]
    assert M.acc(y, p) == pytest.approx(3 / 5)
    # tp=2 fp=1 fn=1 -> precision 2/3 recall 2/3
    assert M.f1(y, p) == pytest.approx(2 / 3)
    # mcc = (tp*tn - fp*fn)/sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn)) = (2*1-1*1)/sqrt(3*3*2*2) = 1/6
    assert M.mcc(y, p) == pytest.approx(1 / 6)
    # class 0: tp=1 fp=1 fn=1 -> 1/2 ; class 1: 2/3 -> macro 7/12
    assert M.macro_f1(y, p) == pytest.approx(7 / 12)


def test_correlations_by_hand():
    assert M.pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert M.spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)   # 1 - 6*2/(4*15)
    assert M.pearson([1, 2, 3], [5, 5, 5]) == 0.0


def test_multirc_em_and_f1a():
    y = [1, 0, 1, 0]
    p = [1, 0, 0, 0]
    groups = ["q1", "q1", "q2", "q2"]
    assert M.em(y, p, groups) == pytest.approx(0.5)
    assert M.f1a(y, p) == pytest.approx(2 * 1 * 0.5 / 1.5)


def test_record_max_over_answers():
    golds = [["Barack Obama", "Obama"], ["Paris"]]
    preds = ["obama", "the city of Paris"]
    assert M.record_em(golds, preds) == pytest.approx(0.5)
    # second: pred tokens [city, of, paris] vs [paris]: p=1/3 r=1 -> f1 = 0.5
    assert M.record_f1(golds, preds) == pytest.approx((1.0 + 0.5) / 2)


def test_gender_parity():
    assert M.gender_parity([1, 1, 0, 1, 0, 0], [0, 0, 1, 1, 2, 2]) == pytest.approx(2 / 3)


def test_score_dispatches_by_registry():
    task = tasks.TASKS["MRPC"]
    inst = [{"label": 1}, {"label": 0}, {"label": 1}]
    out = M.score(task, inst, [1, 1, 1])
    assert set(out) == {"f1", "acc"} and out["acc"] == pytest.approx(2 / 3)
    assert M.task_score(task, out) == pytest.approx((out["f1"] + out["acc"]) / 2)
    with pytest.raises(ValueError):
        M.score(task, inst, [1])
