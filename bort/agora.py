"""Agora: fine-tuning with points sampled near the model's mistakes.

de Wynter, "An Algorithm for Learning Smaller Representations of Models With Scarce Data" (arXiv
2010.07990), as Bort uses it (arXiv 2010.10499; alexa/bort README adds "replay"). The loop, as we
implement it:
1. fine-tune the student on the training set (the `bort` model of the same task: Agora starts
   from it rather than repeating the same seeded run);
2. predict the *Agora split* of dev and collect the misses;
3. for each miss, make `k` new points near it in the teacher's sentence-embedding space (mean
   pooling, as the MiniLM checkpoint was trained; cosine similarity): one text segment of the miss
   is replaced by its nearest neighbours from an unlabelled pool -- corpus sentences and the
   *training* texts of all tasks (`pool_texts`) -- segment by segment;
4. label the new points with a second, stronger model: the fine-tuned source model (BERT) of the
   same task;
5. add them to the training set and fine-tune the model further on it for `round_epochs`; with
   `replay` every earlier round's points are trained on again, without it only the newest round's.
Repeat for `rounds`. Each round records misses found, points added, how often the labeler agreed
with the gold labels of the misses, and the dev score.

Which segment is "near", and which pool text may stand in for it, is the task shape's
(bort.shapes: `segments`, `compatible`): text_a / text_b of pairs, the premise of COPA, the
question of RACE, the query of ReCoRD (a pool text with a placeholder), for WiC a pool sentence
containing the target word, for WSC one containing both spans. Agora sees the training set and
the Agora split of dev only: a generated point whose inputs equal a held-out instance's is dropped
(and counted), and `guard` fails loudly if a held-out input reaches training or Agora's dev split.

With a checkpoint folder every round ends by saving the student, the points and marks so far, the
round records and what the labeler and the embedder said (bort.checkpoint); a killed run resumes
after its last completed round. Each round's fit re-seeds everything, and the frozen part's cache
is rebuilt round by round as the rounds built it, so a resumed run ends where an uninterrupted
one does.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict
from pathlib import Path
from typing import Callable, List, Sequence, Set, Tuple

import numpy as np

from bort.corpus import task_texts
from bort.finetune import AgoraConfig
from bort.tasks import Task

log = logging.getLogger(__name__)


def pool_texts(training_sets: Sequence[Sequence[dict]], corpus_lines: Sequence[str], per_task: int,
               corpus_sentences: int, seed: int) -> List[str]:
    """Agora's unlabelled pool: up to `per_task` distinct text segments of each training set (in
    the order given) and `corpus_sentences` corpus sentences of 5-40 words, drawn with `seed`."""
    rng = np.random.RandomState(seed)
    texts = set()
    for instances in training_sets:
        seen = task_texts(instances)
        take = rng.permutation(len(seen))[:per_task]
        texts.update(seen[j] for j in sorted(take))
    sentences = sorted({s.strip() for line in corpus_lines for s in re.split(r"(?<=[.!?])\s+", line)
                        if 5 <= len(s.split()) <= 40})
    take = rng.permutation(len(sentences))[:corpus_sentences]
    texts.update(sentences[j] for j in sorted(take))
    return sorted(texts)


class Pool:
    """Unlabelled texts with their (L2-normalised) teacher sentence embeddings."""
    TEXTS, VECTORS = "texts.json", "vectors.npy"         # the files of a saved pool's folder

    def __init__(self, texts: Sequence[str], vectors: np.ndarray):
        self.texts, self.vectors = list(texts), vectors

    def save(self, folder) -> None:
        (Path(folder) / self.TEXTS).write_text(json.dumps(self.texts, indent=0) + "\n", encoding="utf-8")
        np.save(Path(folder) / self.VECTORS, self.vectors.astype(np.float32))

    @classmethod
    def load(cls, folder) -> "Pool":
        folder = Path(folder)
        return cls(json.loads((folder / cls.TEXTS).read_text(encoding="utf-8")), np.load(folder / cls.VECTORS))

    def neighbours(self, vector: np.ndarray, accept: Callable[[str], bool], k: int) -> List[str]:
        order = np.argsort(-(self.vectors @ vector), kind="stable")
        out = []
        for j in order:
            if accept(self.texts[j]):
                out.append(self.texts[j])
                if len(out) == k:
                    break
        return out


def sample_near(task: Task, misses: Sequence[dict], pool: Pool, embed: Callable[[List[str]], np.ndarray],
                k: int, limit: int, taken: Set[tuple] = frozenset()) -> List[Tuple[tuple, dict]]:
    """k new unlabelled points per replaceable segment of each miss, nearest first, as (mark,
    point) pairs; a mark is (the miss's inputs, the point's inputs). A point a miss already
    brought -- in `taken` (earlier rounds) or for another of its segments -- is passed over for
    the next neighbour, so a miss that recurs brings new points rather than copies."""
    shape = task.shape
    new: List[Tuple[tuple, dict]] = []
    if not misses:
        return new
    taken = set(taken)
    plan = [(m, key) for m in misses for key in shape.segments(m)]
    vectors = embed([m[key] for m, key in plan])
    for (miss, key), vector in zip(plan, vectors):
        base = {kk: v for kk, v in miss.items() if kk not in ("label", "answers")}
        origin = shape.inputs(miss)

        def fresh(text):
            return shape.compatible(miss, key, text) and (origin, shape.inputs(dict(base, **{key: text}))) not in taken
        for text in pool.neighbours(vector, fresh, k):
            point = dict(base, **{key: text})
            mark = (origin, shape.inputs(point))
            taken.add(mark)
            point["id"] = f'agora-{miss["id"]}-{key}-{len(new)}'
            new.append((mark, point))
            if len(new) >= limit:
                return new
    return new


class Memo:
    """`fn` over a list, computed once per distinct item: the embedder and the labeler are fixed
    models, and a miss that recurs in the next round needs neither again (bort.finetune.runs keeps
    one embedder memo for all the Agora runs of a worker; a text's embedding depends on it alone)."""

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


def guard(task: Task, points: Sequence[dict], forbidden: Set[tuple], where: str) -> None:
    """Agora must never see a held-out point; fail loudly if one slips in. On the splits
    bort.finetune.heldout makes, the checks of the training set and of Agora's dev split cannot
    fire (a held-out unit whose input is in training or in Agora's dev is dropped there, and dev
    is split by group); they catch a caller with other splits. The check of each round's points
    protects Agora's own new points, which a neighbour swap could make equal to a held-out one."""
    leaked = [p["id"] for p in points if task.shape.inputs(p) in forbidden]
    if leaked:
        raise AssertionError(f"Agora {where} contains {len(leaked)} held-out point(s), e.g. {leaked[:3]}")


def run(task: Task, model, train: List[dict], agora_dev: List[dict], labeler,
        pool: Pool, embed, cfg: AgoraConfig, forbidden: Set[tuple], score: Callable, progress=None,
        checkpoint_dir=None, sources: dict = None):
    """Agora's rounds on `model`, a student already fine-tuned on `train` (step 1); `forbidden`
    holds the inputs (`shape.inputs`) of the held-out instances. Returns (the student after the
    rounds, per-round records). With `checkpoint_dir` (a TaskModel student) a killed run resumes
    after its last completed round, when it was made from the same `sources` (digests of what the
    labeler, the pool and the embedder were loaded from: the memos of their answers are resumed)."""
    shape = task.shape
    guard(task, train, forbidden, "training set")
    guard(task, agora_dev, forbidden, "dev split")
    embed, label = Memo(embed), Memo(labeler.predict, shape.inputs)
    records, added, marks = [], [], []
    latest: List[dict] = []
    config_id = None
    if checkpoint_dir is not None:
        from bort import checkpoint
        config_id = model.fingerprint(train, agora=asdict(cfg), dev=checkpoint.digest(agora_dev),
                                      sources=sources or {})
        records, added, marks = resume(checkpoint_dir, model, train, cfg, config_id, embed, label)
    preds = model.predict(agora_dev)            # a round starts from the previous round's predictions
    for r in range(len(records), cfg.rounds):
        if hasattr(progress, "set_description"):
            progress.set_description(f"agora {task.name} round {r + 1}/{cfg.rounds}")
        misses = [inst for inst, p in zip(agora_dev, preds) if shape.is_miss(inst, p)]
        record = {"round": r + 1, "dev_before": score(agora_dev, preds), "misses": len(misses)}
        sampled = sample_near(task, misses, pool, embed, cfg.neighbours, cfg.max_new_per_round, set(marks))
        kept = [(m, p) for m, p in sampled if shape.inputs(p) not in forbidden]   # a neighbour swap may
        record["dropped_heldout_collisions"] = len(sampled) - len(kept)           # recreate a held-out point
        points = [p for _, p in kept]
        guard(task, points, forbidden, f"round {r + 1} points")
        labels = label(misses + points)          # one pass: agreement on misses, labels for points
        if misses:
            record["labeler_agreement"] = float(np.mean([not shape.is_miss(m, p) for m, p in zip(misses, labels)]))
        latest = [shape.with_label(p, y) for p, y in zip(points, labels[len(misses):])]
        added.extend(latest)
        marks.extend(m for m, _ in kept)
        record["points_added"] = len(latest)
        record["points_total"] = len(added)
        model.fit(round_set(train, added, len(added) - len(latest), len(added), cfg.replay), progress,
                  epochs=cfg.round_epochs)
        preds = model.predict(agora_dev)
        record["dev_after"] = score(agora_dev, preds)
        records.append(record)
        log.info("%s Agora round %d: %d misses, %d points added, labeler agreement %s, dev %.3f -> %.3f",
                 task.name, r + 1, len(misses), len(latest), record.get("labeler_agreement"),
                 record["dev_before"], record["dev_after"])
        if checkpoint_dir is not None:
            save(checkpoint_dir, model, records, added, marks, embed, label, config_id)
    return model, records


def round_sets(train: List[dict], added: List[dict], records: List[dict], replay: bool) -> List[List[dict]]:
    """The training set of each recorded round: `train` plus every point so far (replay) or the
    round's own points."""
    out, end = [], 0
    for record in records:
        start, end = end, end + record["points_added"]
        out.append(round_set(train, added, start, end, replay))
    return out


def round_set(train: List[dict], added: List[dict], start: int, end: int, replay: bool) -> List[dict]:
    """What a round trains on: `train` plus the points added up to `end` (replay), or only that
    round's, added[start:end]."""
    return list(train) + (added[:end] if replay else added[start:end])


def save(folder, model, records, added, marks, embed: Memo, label: Memo, config_id: str) -> None:
    """The state after a round: the student's weights and everything the next round reads."""
    from bort import checkpoint
    texts = sorted(embed.known)
    vectors = np.stack([embed.known[t] for t in texts]) if texts else np.zeros((0, 0), np.float32)
    checkpoint.save(folder, {"model": model.net}, None,
                    {"round": len(records), "records": records, "added": added, "marks": marks,
                     "labels": [[k, v] for k, v in label.known.items()], "embedded": texts, "config": config_id},
                    arrays={"embeddings": vectors}, trained_only=True)


def resume(folder, model, train, cfg: AgoraConfig, config_id: str, embed: Memo, label: Memo):
    """(records, points added, marks) after the last round the checkpoint in `folder` holds --
    the student's weights, its frozen cache and both memos restored -- or a fresh start."""
    from bort import checkpoint
    state = checkpoint.load_state(folder)
    if state is None or state.get("config") != config_id:
        if state is not None:
            log.info("Agora checkpoint %s was made by other settings, data or weights; starting at round 1", folder)
        return [], [], []
    checkpoint.restore(folder, {"model": model.net}, None, state, ctx=model.ctx, trained_only=True)
    records, added = state["records"], state["added"]
    for round_train in round_sets(train, added, records, cfg.replay):   # the frozen cache, as the
        model.warm_cache(round_train)                                   # rounds built it
    label.known.update((_tuples(k), v) for k, v in state["labels"])
    vectors = checkpoint.load_array(folder, "embeddings")
    embed.known.update(zip(state["embedded"], vectors))
    log.info("resuming Agora from checkpoint %s after round %d", folder, len(records))
    return records, added, [_tuples(m) for m in state["marks"]]


def _tuples(value):
    """JSON's lists back into the tuples `shape.inputs` makes."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value
