"""The TF-IDF + logistic-regression floor: what a bag of words learns from each task.

It is the sanity floor under every table: a task whose floor is at chance is not learnable from
words alone, one whose floor is near perfect is trivial. The task's shape (bort.shapes) says what
the floor reads and which scikit-learn estimator fits it: pairs are the two TF-IDF vectors side
by side; regression (STS-B) is ridge; multiple choice (COPA, RACE) and ReCoRD score each option
(candidate filled into the query) with a binary model and take the best; MultiRC is answer-level
binary. A task without a training run of its own is predicted by the floor of the task whose
model scores it (`Task.scored_by`).
"""
from __future__ import annotations

from typing import Callable, Dict, Sequence

from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from bort import metrics as M
from bort.finetune.heldout import Splits
from bort.shapes import has_gold
from bort.tasks import Task, map_labels


class Floor:
    """One fitted TF-IDF floor model for one task (kept so the tasks it scores can reuse it)."""

    def __init__(self, task: Task, seed: int = 0, max_features: int = 20000):
        self.task, self.shape = task, task.shape
        self.vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=1, max_features=max_features,
                                          sublinear_tf=True)
        self.model = self.shape.floor_estimator(seed)

    def features(self, rows: Sequence) -> "sparse.csr_matrix":
        """The (left, right) texts of rows as their two TF-IDF vectors side by side."""
        left, right = [r[0] for r in rows], [r[1] for r in rows]
        return sparse.hstack([self.vectorizer.transform(left), self.vectorizer.transform(right)]).tocsr()

    def fit(self, instances: Sequence[dict]) -> "Floor":
        rows = [row for inst in instances for row in self.shape.floor_texts(inst)]
        targets = [t for inst in instances for t in self.shape.floor_targets(inst)]
        self.vectorizer.fit([text for row in rows for text in row])
        if len(set(targets)) < 2 and hasattr(self.model, "predict_proba"):   # one class (a tiny excerpt):
            from sklearn.dummy import DummyClassifier                          # the constant predictor
            self.model = DummyClassifier(strategy="most_frequent")
        self.model.fit(self.features(rows), targets)
        return self

    def predict(self, instances: Sequence[dict]) -> list:
        return self.shape.floor_predict(self.model, self.features, instances)


def run_floor(tasks: Sequence[Task], splits: Callable[[Task], Splits],
              seed: int = 0) -> Dict[str, Dict[str, float]]:
    """Fit on the training split, score on the held-out rows the fine-tuned models are scored on
    (`splits(task)`: bort.finetune.heldout.splits), for every task with labelled held-out rows;
    the floor reads the whole training split (it costs seconds even on QQP's 364k rows)."""
    fitted: Dict[str, Floor] = {}
    results = {}
    for task in sorted(tasks, key=lambda t: not t.trains):        # scoring tasks first
        data = splits(task)
        floor = fitted[task.scored_by] if task.scored_by else Floor(task, seed).fit(data.train)
        fitted[task.name] = floor
        held = [i for i in data.heldout if has_gold(i)]
        if held:
            results[task.name] = M.score(task, held, map_labels(floor.task, task, floor.predict(held)))
    return results
