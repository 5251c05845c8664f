"""Agora on a constructed case: the training set misses a region of the input space."""
import math

import numpy as np
import pytest

from bort import agora, tasks
from bort.finetune import AgoraConfig
from bort.finetune.heldout import splits

TASK = tasks.TASKS["SST-2"]          # a single-sentence, two-label task shape
ALL = {"lr": [1.0]}                  # Θ of the toy student below: take in every new point
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
    """The student: 1-NN on the circle, trained on whatever it is given. A round's `lr` is the
    share of the points it has not seen that it takes in (1.0 all, 0.0 none): a θ whose effect is
    known, for the pruning test."""

    def fit(self, train, progress=None, epochs=None, lr=None, schedule=None):
        known = {inputs(i) for i in getattr(self, "train", [])}
        new = [i for i in train if inputs(i) not in known]
        take = len(new) if lr is None else int(round(lr * len(new)))
        self.train = getattr(self, "train", []) + new[:take]
        self.x = embed([i["text_a"] for i in self.train])
        self.y = np.array([i["label"] for i in self.train])
        return [0.0]

    def weights(self):
        return list(self.train)

    def load_weights(self, weights):
        self.train = []
        self.fit(weights)

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
                              AgoraConfig(rounds=3, neighbours=8, max_new_per_round=400, theta=ALL),
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
                          AgoraConfig(rounds=1, neighbours=50, theta=ALL), forbidden, lambda i, p: 0.0)
    assert rounds[0]["points_valid"] > 0


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
        def fit(self, train, progress=None, epochs=None, lr=None, schedule=None):
            return [0.0]

    class Counting(Labeler):
        asked = []

        def predict(self, instances):
            self.asked.extend(inputs(i) for i in instances)
            return super().predict(instances)
    student, labeler = fitted(train), Counting()
    student.fit, student.load_weights = Frozen().fit, lambda weights: None
    _, rounds = agora.run(TASK, student, train, dev, labeler, pool, embed,
                          AgoraConfig(rounds=2, neighbours=2, max_new_per_round=400), set(),
                          lambda i, p: 0.0)
    assert rounds[0]["misses"] == rounds[1]["misses"] > 0
    assert rounds[1]["points_valid"] == rounds[0]["points_valid"] > 0
    assert not rounds[0]["accepted"] and not rounds[1]["accepted"]     # nothing changed: nothing helped
    assert len(labeler.asked) == len(set(labeler.asked))          # every distinct input labelled once
    assert len(set(labeler.asked)) > rounds[0]["misses"] + rounds[0]["points_valid"]   # round 2 brought new ones


def test_a_miss_never_brings_the_same_point_twice():
    """A miss's earlier points (their marks) are passed over for its next neighbours; the points
    of one call are distinct per miss."""
    _, dev, _, pool = case()
    texts = sorted(set(pool.texts))                  # a real pool's texts are distinct (agora.pool_texts)
    pool = agora.Pool(texts, embed(texts))
    first, _ = agora.sample_near(TASK, dev[:3], pool, embed, 4, 100)
    again, _ = agora.sample_near(TASK, dev[:3], pool, embed, 4, 100, {mark for mark, _ in first})
    assert len(first) == len(again) == 12
    assert len({mark for mark, _ in first} | {mark for mark, _ in again}) == 24
    for miss in dev[:3]:
        mine = [p for mark, p in first + again if mark[0] == inputs(miss)]
        assert len({inputs(p) for p in mine}) == len(mine) == 8


def accuracy_score(instances, preds):
    return float(np.mean([p == i["label"] for p, i in zip(preds, instances)]))


def test_a_round_that_lowers_the_acceptance_score_is_rejected():
    """A student that any new point spoils (it then predicts the opposite of the truth): every θ's
    copy scores lower on the acceptance half, so the round is rejected and the student, its
    predictions and its training set stay as they were."""
    train, dev, test, pool = case()
    dev = dev + points(np.linspace(0.1, 1.4, 20), 30_000)       # these it gets right, the arc's wrong

    class Fragile:
        spoilt = False

        def fit(self, train_set, progress=None, epochs=None, lr=None, schedule=None):
            self.spoilt = len(train_set) > len(train)
            return [0.0]

        def predict(self, instances):
            return [y ^ self.spoilt for y in plain.predict(instances)]

        def weights(self):
            return self.spoilt

        def load_weights(self, weights):
            self.spoilt = weights
    plain, student = fitted(train), Fragile()
    before = student.predict(test)
    model, rounds = agora.run(TASK, student, train, dev, Labeler(), pool, embed,
                              AgoraConfig(rounds=2, neighbours=8, max_new_per_round=400), set(), accuracy_score)
    assert all(r["points_valid"] > 0 for r in rounds) and len(rounds[0]["theta"]) == 2
    assert all(t["accept_score"] < r["accept_before"] for r in rounds for t in r["theta"])
    assert [r["accepted"] for r in rounds] == [False, False] and all(r["points_added"] == 0 for r in rounds)
    assert rounds[-1]["accept_after"] == rounds[0]["accept_before"] and model.predict(test) == before
    # the toy 1-NN student with the truthful labeler is accepted: the rule is the score
    _, good = agora.run(TASK, fitted(train), train, dev, Labeler(), pool, embed,
                        AgoraConfig(rounds=1, neighbours=8, max_new_per_round=400, theta=ALL), set(), accuracy_score)
    assert good[0]["accepted"] and good[0]["accept_after"] > good[0]["accept_before"]


def test_theta_pruning_keeps_the_best_theta():
    """Θ on a toy whose order is known: lr is the share of new points the student takes in, so
    more is better here; each round keeps the better half, ending with the best θ."""
    assert agora.survivors([(0.5, 0), (0.9, 1), (0.7, 2), (0.9, 3)]) == [1, 3]   # a tie: both kept
    assert agora.survivors([(0.6, 0), (0.8, 1), (0.7, 2)]) == [1, 2]
    train, dev, test, pool = case()
    cfg = AgoraConfig(rounds=3, neighbours=1, max_new_per_round=2, theta={"lr": [0.0, 0.25, 0.5, 1.0]})
    _, rounds = agora.run(TASK, fitted(train), train, dev, Labeler(), pool, embed, cfg, set(), accuracy_score)
    scores = [t["accept_score"] for t in rounds[0]["theta"]]
    assert scores == sorted(scores) and scores[0] == rounds[0]["accept_before"] < scores[-1]  # lr 0 learns nothing
    assert rounds[0]["theta_kept"] == ["lr=0.5", "lr=1.0"] and rounds[0]["accepted"]
    assert [t["setting"] for t in rounds[1]["theta"]] == ["lr=0.5", "lr=1.0"]     # only the survivors train
    assert rounds[1]["theta"][0]["accept_score"] == rounds[1]["theta"][1]["accept_score"]
    assert rounds[1]["theta_kept"] == ["lr=0.5"]                                 # a tie: the first tried
    assert rounds[2]["points_valid"] == 0 and rounds[2]["theta"] == [] and not rounds[2]["accepted"]


def test_one_decay_over_all_rounds():
    """No warm-up restart: round r of R runs the rate from (1 - r/R) to (1 - (r+1)/R) of θ's lr."""
    assert [round(agora.decay(r, 2)(s, 4), 3) for r in range(2) for s in range(4)] == \
        [1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125]


def test_a_race_question_the_passage_cannot_answer_is_never_added():
    """RACE's new points: a pool text stands in for the question only when it is a question, and
    a point is kept only when the labeler is sure of an option (`min_certainty`); a question about
    someone the passage does not mention leaves it unsure, so that point is not added."""
    race = tasks.TASKS["RACE-middle"]
    passage = "Anna lives in Oslo. Ben is a baker. Anna owns a lamp."
    miss = {"id": "m", "text_a": passage, "question": "Where does Anna live?", "label": 0,
            "choices": ["Oslo", "Paris", "Rome", "Lima"]}
    pool_texts = ["Where does Anna live now?", "Where does Zoe live?", "Anna lives in a city", "Where is the lamp _ ."]
    vectors = np.eye(4)[[0, 1, 2, 3]] * 0.6 + 0.8 * np.eye(4)[[0, 0, 0, 0]]
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    pool = agora.Pool(pool_texts, vectors)
    sampled, _ = agora.sample_near(race, [miss], pool, lambda texts: np.eye(4)[[0] * len(texts)], 4, 100, set(), 0.5)
    questions = [p["question"] for _, p in sampled]
    assert "Anna lives in a city" not in questions and "Where does Zoe live?" in questions

    class Reader:
        """Sure when the question's person is in the passage, at chance otherwise."""
        def predict_certain(self, instances):
            return [(0, 0.9 if i["question"].split()[2].rstrip("?'s") in i["text_a"] else 0.0) for i in instances]

    class Student:
        def predict(self, instances):
            return [1] * len(instances)

        def weights(self):
            return None

        def load_weights(self, weights):
            pass

        def fit(self, train, progress=None, epochs=None, lr=None, schedule=None):
            self.seen = list(train)
            return [0.0]
    dev = [dict(miss, id=f"m{k}", text_a=f"{passage} ({k})") for k in range(4)]
    student = Student()
    _, rounds = agora.run(race, student, [], dev, Reader(), pool, lambda texts: np.eye(4)[[0] * len(texts)],
                          AgoraConfig(rounds=1, neighbours=4, theta={"lr": [0.0001]}), set(),
                          lambda i, p: float(np.mean([x == y["label"] for x, y in zip(p, i)])))
    added = [p["question"] for p in student.seen]
    assert added and all("Zoe" not in q for q in added) and rounds[0]["points_uncertain"] > 0
