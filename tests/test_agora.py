"""Agora on a constructed case: the training set misses a region of the input space."""
import math

import numpy as np
import pytest

from bort import agora, tasks
from bort.finetune import AgoraConfig
from bort.finetune.heldout import splits

TASK = tasks.TASKS["SST-2"]          # a single-sentence, two-label task shape
inputs = TASK.shape.inputs


def angle_text(theta: float) -> str:
    return f"point {theta:.4f}"


def theta_of(text: str) -> float:
    return float(text.split()[1])


def truth(theta: float) -> int:
    """Label 1 on two opposite arcs of the circle (the torus of the blog, in one dimension)."""
    return int(math.sin(2 * theta) > 0)


def embed(texts):
    theta = np.array([theta_of(t) for t in texts])
    return np.stack([np.cos(theta), np.sin(theta)], axis=1)


class NearestNeighbour:
    """The student: 1-NN on the circle, trained on whatever it is given."""

    def fit(self, train, progress=None, epochs=None):
        self.train = list(train) if not hasattr(self, "train") else self.train + list(train)
        self.x = embed([i["text_a"] for i in self.train])
        self.y = np.array([i["label"] for i in self.train])
        return [0.0]

    def predict(self, instances):
        x = embed([i["text_a"] for i in instances])
        return [int(self.y[np.argmax(self.x @ v)]) for v in x]


class Labeler:
    """The stronger model: knows the truth."""

    def predict(self, instances):
        return [truth(theta_of(i["text_a"])) for i in instances]


def points(thetas, start=0):
    return [{"id": start + k, "text_a": angle_text(t), "label": truth(t)} for k, t in enumerate(thetas)]


def case():
    rng = np.random.RandomState(0)
    # training covers the circle except the arc (pi/2, pi), where the label is 0 but both
    # neighbouring training regions... (0, pi/2) is 1 -- a 1-NN extends the wrong label inward
    train_theta = [t for t in rng.uniform(0, 2 * math.pi, 400) if not (math.pi / 2 < t < math.pi)]
    dev_theta = rng.uniform(math.pi / 2, math.pi, 20)
    test_theta = rng.uniform(math.pi / 2, math.pi, 200)
    pool_theta = rng.uniform(0, 2 * math.pi, 2000)
    pool_texts = [angle_text(t) for t in pool_theta]
    return (points(train_theta), points(dev_theta, 10_000), points(test_theta, 20_000),
            agora.Pool(pool_texts, embed(pool_texts)))


def fitted(train):
    model = NearestNeighbour()
    model.fit(train)
    return model


def accuracy(model, instances):
    return float(np.mean([p == i["label"] for p, i in zip(model.predict(instances), instances)]))


def test_agora_recovers_the_missing_region():
    train, dev, test, pool = case()
    plain = NearestNeighbour()
    plain.fit(train)
    before = accuracy(plain, test)
    forbidden = {inputs(i) for i in test}
    model, rounds = agora.run(TASK, fitted(train), train, dev, Labeler(), pool, embed,
                              AgoraConfig(rounds=3, neighbours=8, max_new_per_round=400),
                              forbidden, lambda inst, preds: float(np.mean([p == i["label"] for p, i in zip(preds, inst)])))
    after = accuracy(model, test)
    assert before < 0.75 and after > before + 0.15
    assert rounds[0]["misses"] > 0 and rounds[0]["points_added"] > 0
    assert rounds[0]["labeler_agreement"] == 1.0


def test_heldout_points_never_reach_agora():
    train, dev, test, pool = case()
    forbidden = {inputs(i) for i in test}
    with pytest.raises(AssertionError, match="dev split contains 1 held-out point"):
        agora.run(TASK, fitted(train), train, dev + test[:1], Labeler(), pool, embed,
                  AgoraConfig(rounds=1), forbidden, lambda i, p: 0.0)
    # a neighbour that equals a held-out point is dropped, not trained on
    pool_with_test = agora.Pool(pool.texts + [test[0]["text_a"]], np.vstack([pool.vectors, embed([test[0]["text_a"]])]))
    _, rounds = agora.run(TASK, fitted(train), train, dev, Labeler(), pool_with_test, embed,
                          AgoraConfig(rounds=1, neighbours=50), forbidden, lambda i, p: 0.0)
    assert rounds[0]["points_added"] > 0


def test_pipeline_splits_keep_heldout_apart(embedded_root, tmp_path):
    task = tasks.TASKS["RTE"]
    folder = tasks.task_dir(embedded_root, task)
    data = splits(task, folder, "auto")
    assert data.note.startswith("test split") and len(data.agora_dev) == 20 and data.heldout == data.test
    data = splits(task, folder, "dev_half")
    keys = {inputs(i) for i in data.heldout}
    assert data.note.startswith("held-out half of dev") and keys and not keys & {inputs(i) for i in data.agora_dev}
    assert len(data.heldout) + len(data.agora_dev) == 20
    multirc = tasks.TASKS["MultiRC"]
    data = splits(multirc, tasks.task_dir(embedded_root, multirc), "dev_half")
    assert not {i["group"] for i in data.agora_dev} & {i["group"] for i in data.heldout}
    ax = tasks.TASKS["AX"]                       # no dev split: always its labelled test split
    data = splits(ax, tasks.task_dir(embedded_root, ax), "dev_half")
    assert data.note.startswith("test split") and data.heldout == data.test and not data.agora_dev


def test_a_recurring_miss_brings_new_points_and_costs_no_second_labelling():
    """Round 2 sees the same misses (a student that never learns): its points are the next
    neighbours, not copies of round 1's, and the labeler is not asked about a miss twice."""
    train, dev, test, pool = case()

    class Frozen(NearestNeighbour):
        def fit(self, train, progress=None, epochs=None):
            return [0.0]

    class Counting(Labeler):
        asked = []

        def predict(self, instances):
            self.asked.extend(inputs(i) for i in instances)
            return super().predict(instances)
    student, labeler = fitted(train), Counting()
    student.fit = Frozen().fit
    _, rounds = agora.run(TASK, student, train, dev, labeler, pool, embed,
                          AgoraConfig(rounds=2, neighbours=2, max_new_per_round=400), set(),
                          lambda i, p: 0.0)
    assert rounds[0]["misses"] == rounds[1]["misses"] > 0
    assert rounds[1]["points_added"] == rounds[0]["points_added"] > 0
    assert len(labeler.asked) == len(set(labeler.asked))          # every distinct input labelled once
    assert len(set(labeler.asked)) > rounds[0]["misses"] + rounds[0]["points_added"]   # round 2 brought new ones


def test_a_miss_never_brings_the_same_point_twice():
    """A miss's earlier points (their marks) are passed over for its next neighbours; the points
    of one call are distinct per miss."""
    _, dev, _, pool = case()
    texts = sorted(set(pool.texts))                  # a real pool's texts are distinct (agora.pool_texts)
    pool = agora.Pool(texts, embed(texts))
    first = agora.sample_near(TASK, dev[:3], pool, embed, 4, 100)
    again = agora.sample_near(TASK, dev[:3], pool, embed, 4, 100, {mark for mark, _ in first})
    assert len(first) == len(again) == 12
    assert len({mark for mark, _ in first} | {mark for mark, _ in again}) == 24
    for miss in dev[:3]:
        mine = [p for mark, p in first + again if mark[0] == inputs(miss)]
        assert len({inputs(p) for p in mine}) == len(mine) == 8
