"""Agora: fine-tuning with points sampled near the model's mistakes (bort.md section 4).

The loop, as the paper describes it and as we implement it:
1. fine-tune the student on the training set (the `bort` model of the same `finetune@T`
   stage: Agora starts from it rather than repeating the same seeded run);
2. predict the *Agora split* of dev and collect the misses;
3. for each miss, make `k` new points near it in the teacher's sentence-embedding space (mean
   pooling, as the MiniLM checkpoint was trained; cosine similarity): one text segment of the
   miss is replaced by its nearest neighbours from an unlabelled pool -- corpus sentences and
   the *training* texts of all tasks -- for pair tasks segment by segment;
4. label the new points with a second, stronger model: the fine-tuned source model (BERT) of
   the same task;
5. add them to the training set and fine-tune the model further on it for `round_epochs`; with
   `replay` every earlier round's points are trained on again, without it only the newest round's.
Repeat for `rounds`. Each round records misses found, points added, how often the labeler
agreed with the gold labels of the misses, and the dev score.

Which segment is "near" depends on the task's shape: text_a / text_b of single, pair,
regression and MultiRC instances; the premise of COPA and the question of RACE; the query of
ReCoRD (pool: queries with a placeholder); for WiC only pool sentences containing the target
word, for WSC only texts containing both spans. Agora sees the training set and the Agora split
of dev only: a generated point that happens to equal a held-out input is dropped (and counted),
and `guard` fails loudly if a held-out input reaches training or Agora's dev split.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence, Set

import numpy as np

from bort.tasks import Task

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgoraConfig:
    rounds: int = 2
    round_epochs: int = 2       # epochs of further fine-tuning on the augmented set per round
    neighbours: int = 2         # k new points per segment of each miss
    replay: bool = True
    max_new_per_round: int = 400
    seed: int = 0


def segments(task: Task, inst: dict) -> List[str]:
    """Keys of the instance texts that Agora may replace by neighbours."""
    if task.shape == "choice":
        return ["question"] if task.suite == "race" else ["text_a"]
    if task.shape == "record":
        return ["query"]
    if task.shape == "wsc":
        return ["text_a"]
    if task.shape == "multirc":
        return ["text_b"]
    return ["text_a", "text_b"] if "text_b" in inst and inst["text_b"] is not None else ["text_a"]


def compatible(task: Task, inst: dict, key: str, text: str) -> bool:
    """Whether a pool text can stand in for `inst[key]` without breaking the task's structure."""
    if text == inst[key]:
        return False
    if task.shape == "wic":
        return re.search(rf"\b{re.escape(inst['fields']['word'])}\b", text) is not None
    if task.shape == "wsc":
        target = inst["fields"]["target"]
        words = set(text.rstrip(".").split())
        return target["span1_text"].split()[-1] in words and target["span2_text"] in words
    if task.shape == "record":
        return "@placeholder" in text
    return True


def is_miss(task: Task, inst: dict, pred) -> bool:
    if task.shape == "record":
        return pred not in inst["answers"]
    if task.shape == "regression":
        return abs(pred - inst["label"]) > 1.0
    return pred != inst["label"]


def text_key(inst: dict) -> tuple:
    """What makes two instances the same point for the held-out guard: every input text,
    options and candidates included (COPA premises recur with other choices)."""
    return tuple(inst.get(k) for k in ("text_a", "text_b", "question", "query")) + \
        tuple(inst.get("choices", ())) + tuple(inst.get("candidates", ()))


class Pool:
    """Unlabelled texts with their (L2-normalised) teacher sentence embeddings."""

    def __init__(self, texts: Sequence[str], vectors: np.ndarray):
        self.texts, self.vectors = list(texts), vectors

    def neighbours(self, vector: np.ndarray, accept: Callable[[str], bool], k: int) -> List[str]:
        order = np.argsort(-(self.vectors @ vector), kind="stable")
        out = []
        for j in order:
            if accept(self.texts[j]):
                out.append(self.texts[j])
                if len(out) == k:
                    break
        return out


def point_key(inst: dict) -> str:
    """Everything a model reads of an instance (not its id or label): equal keys, equal inputs."""
    return json.dumps({k: v for k, v in inst.items() if k not in ("id", "label", "answers")}, sort_keys=True)


def sample_near(task: Task, misses: Sequence[dict], pool: Pool, embed: Callable[[List[str]], np.ndarray],
                k: int, limit: int, taken: Set[str] = frozenset()) -> List[dict]:
    """k new unlabelled points per replaceable segment of each miss, nearest first. A point whose
    inputs were already made -- in `taken` (earlier rounds) or for another miss of this round --
    is passed over for the next neighbour, so every point is new: a miss that recurs brings new
    points rather than copies, and two nearby misses do not share theirs."""
    new: List[dict] = []
    if not misses:
        return new
    taken = set(taken)
    plan = [(m, key) for m in misses for key in segments(task, m)]
    vectors = embed([m[key] for m, key in plan])
    for (miss, key), vector in zip(plan, vectors):
        base = {kk: v for kk, v in miss.items() if kk not in ("label", "answers")}

        def fresh(text):
            return compatible(task, miss, key, text) and point_key(dict(base, **{key: text})) not in taken
        for text in pool.neighbours(vector, fresh, k):
            point = dict(base, **{key: text})
            taken.add(point_key(point))
            point["id"] = f'agora-{miss["id"]}-{key}-{len(new)}'
            new.append(point)
            if len(new) >= limit:
                return new
    return new


class Memo:
    """`fn` over a list, computed once per distinct item within one Agora run: the embedder and
    the labeler are fixed models, and a miss that recurs in the next round needs neither again."""

    def __init__(self, fn: Callable[[list], Sequence], key: Callable = lambda x: x):
        self.fn, self.key, self.known = fn, key, {}

    def __call__(self, items: list) -> list:
        keys = [self.key(x) for x in items]
        todo = {}
        for k, x in zip(keys, items):
            if k not in self.known:
                todo.setdefault(k, x)
        if todo:
            self.known.update(zip(todo, self.fn(list(todo.values()))))
        return [self.known[k] for k in keys]


def label_points(task: Task, points: List[dict], preds: Sequence) -> List[dict]:
    """Give each new point the labeler's prediction as its label (ReCoRD: its entity)."""
    for point, pred in zip(points, preds):
        if task.shape == "record":
            point["answers"] = [pred]
        else:
            point["label"] = pred
    return points


def guard(points: Sequence[dict], forbidden: Set[tuple], where: str) -> None:
    """Agora must never see a held-out point; fail loudly if one slips in."""
    leaked = [p["id"] for p in points if text_key(p) in forbidden]
    if leaked:
        raise AssertionError(f"Agora {where} contains {len(leaked)} held-out point(s), e.g. {leaked[:3]}")


def run(task: Task, model, train: List[dict], agora_dev: List[dict], labeler,
        pool: Pool, embed, cfg: AgoraConfig, forbidden: Set[tuple], score: Callable, progress=None):
    """Agora's rounds on `model`, a student already fine-tuned on `train` (step 1); returns
    (the student after the rounds, per-round records)."""
    guard(train, forbidden, "training set")
    guard(agora_dev, forbidden, "dev split")
    embed, label = Memo(embed), Memo(labeler.predict, point_key)
    records, added = [], []
    latest: List[dict] = []
    preds = model.predict(agora_dev)            # a round starts from the previous round's predictions
    for r in range(cfg.rounds):
        misses = [inst for inst, p in zip(agora_dev, preds) if is_miss(task, inst, p)]
        record = {"round": r + 1, "dev_before": score(agora_dev, preds), "misses": len(misses)}
        points = sample_near(task, misses, pool, embed, cfg.neighbours, cfg.max_new_per_round,
                             {point_key(p) for p in added})
        kept = [p for p in points if text_key(p) not in forbidden]      # a neighbour swap may
        record["dropped_heldout_collisions"] = len(points) - len(kept)   # recreate a held-out point
        points = kept
        guard(points, forbidden, f"round {r + 1} points")
        labels = label(misses + points)          # one pass: agreement on misses, labels for points
        if misses:
            record["labeler_agreement"] = float(np.mean([not is_miss(task, m, p) for m, p in zip(misses, labels)]))
        latest = label_points(task, points, labels[len(misses):])
        added.extend(latest)
        record["points_added"] = len(latest)
        record["points_total"] = len(added)
        model.fit(list(train) + (added if cfg.replay else latest), progress, epochs=cfg.round_epochs)
        preds = model.predict(agora_dev)
        record["dev_after"] = score(agora_dev, preds)
        records.append(record)
        log.info("%s Agora round %d: %d misses, %d points added, labeler agreement %s, dev %.3f -> %.3f",
                 task.name, r + 1, len(misses), len(latest), record.get("labeler_agreement"),
                 record["dev_before"], record["dev_after"])
    return model, records
