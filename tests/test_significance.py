"""bort.significance: the vectorised resampled scores equal bort.metrics (scikit-learn, scipy) on the
same resample; intervals contain the point and narrow with more data; the paired test finds a real
difference and not a null one; a suite interval is the task intervals' stratified combination."""
import numpy as np
import pytest

from bort import metrics as M
from bort import significance as S
from bort import tasks as T

CFG = S.SignificanceConfig(resamples=999, confidence=0.95, alpha=0.05, seed=0)


def fake(task_name, n, rng, quality=0.7):
    """(instances, predictions of 3 seeds) for a task, each seed right with probability `quality`."""
    task = T.get_task(task_name)
    instances, seeds = [], [[], [], []]
    for k in range(n):
        inst = {"id": k, "group": k // 4, "pair_id": k // 2}
        if "record_f1" in task.metrics:
            inst["answers"] = [f"entity {k % 7}", f"the entity {k % 7}"]
            for s in seeds:
                s.append(inst["answers"][0] if rng.rand() < quality else f"entity {(k + 1) % 7} x")
        elif "pearson" in task.metrics:
            inst["label"] = float(rng.rand() * 5)
            for s in seeds:
                s.append(inst["label"] + rng.randn() * (1 - quality) * 3)
        else:
            n_labels = len(task.labels) if task.labels else 4
            inst["label"] = int(rng.randint(n_labels))
            for s in seeds:
                s.append(inst["label"] if rng.rand() < quality else int(rng.randint(n_labels)))
        instances.append(inst)
    return task, instances, seeds


def reference(task, instances, seeds, units, idx):
    """bort.metrics on the resample: the drawn units' instances, a unit drawn twice counted twice."""
    keys = S.unit_keys(task, instances)
    order = list(dict.fromkeys(keys))
    members = {u: [j for j, k in enumerate(keys) if k == order[u]] for u in range(len(order))}
    scores = []
    for preds in seeds:
        inst, pr = [], []
        for draw, u in enumerate(idx):
            for j in members[u]:
                inst.append(dict(instances[j], group=draw, pair_id=draw))   # a re-drawn group is a new group
                pr.append(preds[j])
        scores.append(M.task_score(task, M.score(task, inst, pr)))
    return float(np.mean(scores))


@pytest.mark.parametrize("name", ["CoLA", "MRPC", "STS-B", "CB", "MultiRC", "ReCoRD", "AX-g", "RTE", "MNLI-m"])
def test_resampled_scores_equal_the_scorers(name):
    rng = np.random.RandomState(1)
    task, instances, seeds = fake(name, 60, rng)
    scored = S.Scored(task, instances, seeds)
    whole = np.arange(scored.n_units)
    assert scored.score(whole) == pytest.approx(reference(task, instances, seeds, scored.n_units, whole), abs=1e-9)
    draws = rng.randint(scored.n_units, size=(5, scored.n_units))
    batch = scored.score(draws)
    for row, value in zip(draws, batch):
        assert value == pytest.approx(reference(task, instances, seeds, scored.n_units, row), abs=1e-9)


def test_nearly_constant_regression_predictions_score_like_scipy():
    """Predictions that barely vary are not constant: Pearson's r as scipy gives it, not 0."""
    rng = np.random.RandomState(6)
    task = T.get_task("STS-B")
    instances = [{"label": float(v)} for v in rng.rand(50) * 5]
    seeds = [[2.5 + 1e-5 * (i["label"] - 2.5) + 1e-7 * rng.randn() for i in instances] for _ in range(3)]
    value = S.Scored(task, instances, seeds).score(np.arange(50))
    assert value == pytest.approx(reference(task, instances, seeds, 50, np.arange(50)), abs=1e-6) and value > 0.5


def test_degenerate_predictions_score_like_sklearn():
    """One predicted class: F1 0, MCC 0 (sklearn's zero-division rules)."""
    rng = np.random.RandomState(0)
    task, instances, _ = fake("MRPC", 40, rng)
    seeds = [[0] * 40] * 3
    assert S.Scored(task, instances, seeds).score(np.arange(40)) == pytest.approx(
        reference(task, instances, seeds, 40, np.arange(40)))
    task, instances, _ = fake("CoLA", 40, rng)
    assert S.Scored(task, instances, seeds).score(np.arange(40)) == 0.0


def test_interval_contains_the_score_and_narrows_with_more_data():
    rng = np.random.RandomState(2)
    small = S.interval([S.Scored(*fake("RTE", 50, rng))], CFG)
    large = S.interval([S.Scored(*fake("RTE", 800, rng))], CFG)
    for res in (small, large):
        assert res["low"] <= res["score"] <= res["high"]
    assert large["high"] - large["low"] < (small["high"] - small["low"]) / 2
    again = S.interval([S.Scored(*fake("RTE", 50, np.random.RandomState(2)))], CFG)
    assert again == small                                          # a fixed generator: repeatable


def degrade(task, instances, seeds, rng, keep):
    """The same instances, each prediction kept with probability `keep`, else a random label."""
    n = len(task.labels)
    return [[p if rng.rand() < keep else int(rng.randint(n)) for p in s] for s in seeds]


def test_paired_test_finds_a_real_difference_and_not_a_null_one():
    rng = np.random.RandomState(3)
    task, instances, good = fake("RTE", 200, rng, quality=0.9)
    bad = degrade(task, instances, good, rng, keep=0.3)
    a, b = S.Scored(task, instances, good), S.Scored(task, instances, bad)
    real = S.paired_test([a], [b], CFG)
    assert real["significant"] and real["difference"] > 0.2
    null = S.paired_test([a], [a], CFG)
    assert not null["significant"] and null["difference"] == 0.0


def test_suite_paired_test_equals_a_brute_force_swap():
    """The suite test's statistic under fixed swap masks equals the suite difference recomputed by
    hand from swapped predictions, task by task (the index mapping of paired_test)."""
    rng = np.random.RandomState(5)
    parts_a, parts_b, raw = [], [], []
    for name, n in (("RTE", 30), ("CoLA", 20), ("MRPC", 25)):
        task, instances, seeds = fake(name, n, rng, quality=0.8)
        worse = degrade(task, instances, seeds, rng, keep=0.5)
        parts_a.append(S.Scored(task, instances, seeds))
        parts_b.append(S.Scored(task, instances, worse))
        raw.append((task, instances, seeds, worse))
    total = sum(p.n_units for p in parts_a)
    masks = rng.rand(4, total) < 0.5                      # True: swap that unit
    x = np.where(masks, np.arange(total) + total, np.arange(total))
    y = np.where(masks, np.arange(total), np.arange(total) + total)
    captured = {}

    def fake_permutation_test(data, statistic, **kw):
        captured["value"] = statistic(x, y, axis=-1)
        return type("R", (), {"statistic": statistic(*data, axis=-1), "pvalue": 0.5})()
    original = S.stats.permutation_test
    S.stats.permutation_test = fake_permutation_test
    try:
        result = S.paired_test(parts_a, parts_b, CFG)
    finally:
        S.stats.permutation_test = original
    expected_observed = np.mean([reference(t, i, a, 0, np.arange(len(i))) - reference(t, i, b, 0, np.arange(len(i)))
                                 for t, i, a, b in raw])
    assert result["difference"] == pytest.approx(expected_observed, abs=1e-9) and result["difference"] > 0
    offset = 0
    by_task = []
    for t, i, a, b in raw:
        m = masks[:, offset:offset + len(i)]
        offset += len(i)
        sa = [[[bb[j] if m[r, j] else aa[j] for j in range(len(i))] for aa, bb in zip(a, b)] for r in range(4)]
        sb = [[[aa[j] if m[r, j] else bb[j] for j in range(len(i))] for aa, bb in zip(a, b)] for r in range(4)]
        by_task.append([reference(t, i, sa[r], 0, np.arange(len(i))) - reference(t, i, sb[r], 0, np.arange(len(i)))
                        for r in range(4)])
    assert captured["value"] == pytest.approx(np.mean(by_task, axis=0), abs=1e-9)


def test_macro_f1_counts_only_the_classes_in_the_resample():
    """CB's three classes: a resample without any 'neutral' in gold or predictions averages two."""
    task = T.get_task("CB")
    instances = [{"label": g} for g in (0, 0, 1, 1, 2, 2)]
    seeds = [[0, 1, 1, 1, 2, 0]] * 3
    scored = S.Scored(task, instances, seeds)
    for idx in (np.arange(6), np.array([0, 4, 5, 0, 5, 4])):
        assert scored.score(idx) == pytest.approx(reference(task, instances, seeds, 6, idx), abs=1e-12)


def test_suite_interval_averages_the_tasks():
    rng = np.random.RandomState(4)
    parts = [S.Scored(*fake(name, 80, rng)) for name in ("RTE", "MRPC", "CoLA")]
    suite = S.interval(parts, CFG)
    singles = [S.interval([p], CFG) for p in parts]
    assert suite["score"] == pytest.approx(np.mean([s["score"] for s in singles]))
    widths = [s["high"] - s["low"] for s in singles]
    assert suite["high"] - suite["low"] < max(widths)                # averaging independent tasks narrows
    test = S.paired_test(parts, parts, CFG)
    assert test["difference"] == 0.0 and not test["significant"]
