"""Agora: fine-tuning with points sampled near the model's mistakes, a round kept only when it helps.

de Wynter, "An Algorithm for Learning Smaller Representations of Models With Scarce Data" (arXiv
2010.07990), as Bort uses it (arXiv 2010.10499; alexa/bort README adds "replay"). Only the
abstract is known to us (../shared/design/bort.md section 4): a greedy algorithm with "an
iterative hyperparameter searching-and-pruning procedure over a search space Θ", a stronger
trained model and a data-generating function, whose result is "1 <= r" times better than
training with an enumeration of Θ -- never worse than plain training. The paper's Algorithm 1 is
not reachable from here; what follows the abstract says so, the rest is our reading:
1. the student fine-tuned on the training set (the `bort` model of the same task and seed) -- the
   abstract's trained model is the labeler; Agora starts from Bort's run rather than repeating it;
2. Agora's dev split is halved by group (`split`): misses come from the *source* half, rounds are
   judged on the *acceptance* half, which no new point was built from (our reading);
3. for each miss, `neighbours` new points near it in the teacher's sentence-embedding space (mean
   pooling, cosine similarity): one text segment of the miss is replaced by a pool text --
   corpus sentences and the *training* texts of all tasks (`pool_texts`) -- at least
   `min_similarity` like it (a neighbourhood, not nearest-anything retrieval; our reading);
4. the new points are labelled by the stronger model, the fine-tuned source (BERT) of the same
   task and seed, and kept only when it is `min_certainty` sure (its top probability rescaled so
   that chance is 0): a point the labeler cannot decide -- a RACE question its passage cannot
   answer -- is not a valid instance of the task (our reading of "loose accuracy constraints");
5. every surviving θ of Θ (`theta`: a round's peak learning rate, its epochs) trains a copy of the
   student on the training set + the round's points (+ every accepted round's, with `replay`),
   on one linear decay over all rounds (`decay`: no warm-up restart per round); the best copy on
   the acceptance half replaces the student only if it scores higher there than the student does
   (the round is *accepted*; otherwise *rejected*: the student and the training set stay as
   they were) -- the abstract's "never worse";
6. Θ is pruned to its better half by the round's acceptance scores (`survivors`: greedy halving,
   our reading of "searching-and-pruning"; the abstract's bound has a log|Θ| term).
Repeat for `rounds`. Each round records the misses, the points proposed, dropped as uncertain or
beyond the bound, their labels' balance, each θ's acceptance score, which θ survived, and whether
the round was accepted (the report's Agora table).

Which segment is "near", and which pool text may stand in for it, is the task shape's
(bort.shapes: `segments`, `compatible`): text_a / text_b of pairs, the premise of COPA, the
question of RACE (a pool text that is a question), the query of ReCoRD (a pool text with a
placeholder), for WiC a pool sentence containing the target word, for WSC one containing both
spans. Agora sees the training set and Agora's dev split only: a generated point whose inputs
equal a held-out instance's is dropped (and counted), and `guard` fails loudly if a held-out
input reaches training or Agora's dev split.

With a checkpoint folder every round ends by saving the student, the points and marks so far, the
round records, Θ's survivors and what the labeler and the embedder said (bort.checkpoint); a
killed run resumes after its last completed round. Each fit re-seeds everything, and the frozen
part's cache is rebuilt round by round as the rounds built it, so a resumed run ends where an
uninterrupted one does.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Set, Tuple

import numpy as np

from bort.corpus import task_texts
from bort.finetune import AgoraConfig
from bort.finetune import label as label_of
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

    def neighbours(self, vector: np.ndarray, accept: Callable[[str], bool], k: int,
                   min_similarity: float = -1.0) -> List[str]:
        """Up to `k` accepted texts, nearest first, none less similar than `min_similarity`."""
        sims = self.vectors @ vector
        order = np.argsort(-sims, kind="stable")
        out = []
        for j in order:
            if sims[j] < min_similarity:
                break
            if accept(self.texts[j]):
                out.append(self.texts[j])
                if len(out) == k:
                    break
        return out


def sample_near(task: Task, misses: Sequence[dict], pool: Pool, embed: Callable[[List[str]], np.ndarray],
                k: int, limit: int, taken: Set[tuple] = frozenset(),
                min_similarity: float = -1.0) -> Tuple[List[Tuple[tuple, dict]], int]:
    """k new unlabelled points per replaceable segment of each miss, nearest first, as (mark,
    point) pairs; a mark is (the miss's inputs, the point's inputs). A point a miss already
    brought -- in `taken` (earlier rounds) or for another of its segments -- is passed over for
    the next neighbour, so a miss that recurs brings new points rather than copies. A neighbour
    must be at least `min_similarity` (cosine) like the segment it replaces: nearest-first alone
    is retrieval, not a neighbourhood (a miss with nothing near brings nothing). Returns (the
    points, how many of the k per segment the bound left unfilled)."""
    shape = task.shape
    new: List[Tuple[tuple, dict]] = []
    if not misses:
        return new, 0
    taken = set(taken)
    plan = [(m, key) for m in misses for key in shape.segments(m)]
    vectors = embed([m[key] for m, key in plan])
    short = 0
    for (miss, key), vector in zip(plan, vectors):
        base = {kk: v for kk, v in miss.items() if kk not in ("label", "answers")}
        origin = shape.inputs(miss)

        def fresh(text):
            return shape.compatible(miss, key, text) and (origin, shape.inputs(dict(base, **{key: text}))) not in taken
        found = pool.neighbours(vector, fresh, k, min_similarity)
        short += k - len(found)
        for text in found:
            point = dict(base, **{key: text})
            mark = (origin, shape.inputs(point))
            taken.add(mark)
            point["id"] = f'agora-{miss["id"]}-{key}-{len(new)}'
            new.append((mark, point))
            if len(new) >= limit:
                return new, short
    return new, short


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


def split(task: Task, agora_dev: List[dict], seed: int) -> Tuple[List[dict], List[dict]]:
    """(the source half, the acceptance half) of Agora's dev split, by group (a WSC text, a RACE
    passage: `shape.groups`, as the held-out split is made), seeded: misses are drawn from the
    source half only, and a round is judged on the acceptance half, which its new points were not
    built from (our reading of "a round kept only when it helps": judged on the points it was made
    from, every round would look like it helps)."""
    shape = task.shape
    source, accept = shape.hold_out(agora_dev, shape.groups(agora_dev), np.random.RandomState(seed))
    return source, accept


def decay(round_index: int, rounds: int) -> Callable[[int, int], float]:
    """Round `round_index`'s slice of one linear decay over all rounds: the rate falls from θ's lr
    at the first round's first step to zero at the last round's last step, with no warm-up (the
    student arrives fine-tuned) and no restart per round."""
    def factor(step: int, total: int) -> float:
        return max(0.0, 1.0 - (round_index + step / max(1, total)) / rounds)
    return factor


def survivors(scored: List[Tuple[float, int]]) -> List[int]:
    """Θ's pruning after a round: the better half (rounded up) of the θ tried, by acceptance score
    (the first tried wins a tie), as indices into Θ in their order. Greedy halving is our reading
    of the paper's "iterative hyperparameter searching-and-pruning" (arXiv 2010.07990, abstract:
    its bound has a log|Θ| term, as halving gives)."""
    ranked = sorted(scored, key=lambda si: -si[0])          # stable: the first tried wins a tie
    return sorted(i for _, i in ranked[:(len(ranked) + 1) // 2])


def judge(labeler) -> Callable[[list], list]:
    """The labeler as (label, certainty) per point: its `predict_certain`, or certain labels."""
    if hasattr(labeler, "predict_certain"):
        return labeler.predict_certain
    return lambda items: [(y, 1.0) for y in labeler.predict(items)]


def run(task: Task, model, train: List[dict], agora_dev: List[dict], labeler,
        pool: Pool, embed, cfg: AgoraConfig, forbidden: Set[tuple], score: Callable, progress=None,
        checkpoint_dir=None, sources: dict = None, seed: int = 0):
    """Agora's rounds on `model`, a student already fine-tuned on `train` (step 1); `forbidden`
    holds the inputs (`shape.inputs`) of the held-out instances. Returns (the student after the
    rounds, per-round records). A round: misses on the source half of Agora's dev (`split`) ->
    neighbours within `min_similarity` -> labelled by `labeler`, kept when it is `min_certainty`
    sure -> every surviving θ of Θ trains a copy of the student on train + the points (one decay
    over all rounds, `decay`) -> the best copy on the acceptance half is kept only if it beats the
    student there (the round is accepted, its points stay for later rounds), else the round is
    rejected and the student is unchanged -> Θ is pruned to its better half (`survivors`).
    With `checkpoint_dir` (a TaskModel student) a killed run resumes after its last completed
    round, when it was made from the same `sources` (digests of what the labeler, the pool and the
    embedder were loaded from: the memos of their answers are resumed)."""
    shape = task.shape
    guard(task, train, forbidden, "training set")
    guard(task, agora_dev, forbidden, "dev split")
    source, accept = split(task, agora_dev, seed)
    thetas = cfg.thetas()
    embed, label = Memo(embed), Memo(judge(labeler), shape.inputs)
    state = {"records": [], "points": [], "marks": [], "alive": list(range(len(thetas)))}
    config_id = None
    if checkpoint_dir is not None:
        from bort import checkpoint
        config_id = model.fingerprint(train, agora=asdict(cfg), dev=checkpoint.digest(agora_dev), seed=seed,
                                      sources=sources or {})
        state = resume(checkpoint_dir, model, train, cfg, config_id, embed, label) or state
    records, marks = state["records"], state["marks"]
    if not source or not accept:
        log.info("%s: Agora's dev split has %d group(s): too few to draw misses from one half and judge "
                 "on the other; no rounds", task.name, len(shape.groups(agora_dev)))
        return model, records
    current = score(accept, model.predict(accept))
    preds = model.predict(source)
    for r in range(len(records), cfg.rounds):
        if hasattr(progress, "set_description"):
            progress.set_description(f"agora {task.name} round {r + 1}/{cfg.rounds}")
        misses = [inst for inst, p in zip(source, preds) if shape.is_miss(inst, p)]
        record = {"round": r + 1, "misses": len(misses), "accept_before": current}
        sampled, short = sample_near(task, misses, pool, embed, cfg.neighbours, cfg.max_new_per_round, set(marks),
                                     cfg.min_similarity)
        record["neighbours_beyond_bound"] = short
        kept = [(m, p) for m, p in sampled if shape.inputs(p) not in forbidden]   # a neighbour swap may
        record["dropped_heldout_collisions"] = len(sampled) - len(kept)           # recreate a held-out point
        guard(task, [p for _, p in kept], forbidden, f"round {r + 1} points")
        marks.extend(m for m, _ in kept)          # a point proposed once is never proposed again
        judged = label(misses + [p for _, p in kept])    # one pass: agreement on misses, labels for points
        if misses:
            record["labeler_agreement"] = float(np.mean([not shape.is_miss(m, y) for m, (y, _) in zip(misses, judged)]))
        points = [shape.with_label(p, y) for (_, p), (y, c) in zip(kept, judged[len(misses):])
                  if c >= cfg.min_certainty]
        record["points_uncertain"] = len(kept) - len(points)
        record["points_valid"] = len(points)
        record["point_labels"] = label_counts(task, points)
        state["points"].append(points)
        record["theta"], best = [], None          # no valid point: nothing new to train on or to judge
        if points:
            model, record["theta"], best = try_thetas(model, round_train(train, state, r, cfg.replay), accept,
                                                      score, thetas, state["alive"], cfg, r, progress)
            state["alive"] = survivors([(t["accept_score"], i) for t, i in zip(record["theta"], state["alive"])])
        record["theta_kept"] = [label_of(thetas[i]) for i in state["alive"]]
        record["accepted"] = best is not None and best[0] > current
        if record["accepted"]:
            model.load_weights(best[1])
            current = best[0]
            preds = model.predict(source)
        record["accept_after"] = current
        record["points_added"] = len(points) if record["accepted"] else 0
        records.append(record)
        log.info("%s Agora round %d: %d misses, %d valid points (%d uncertain, %d beyond the bound), "
                 "labeler agreement %s, θ %s, acceptance %.3f -> %.3f, %s", task.name, r + 1, len(misses),
                 len(points), record["points_uncertain"], short, record.get("labeler_agreement"),
                 [(t["setting"], round(t["accept_score"], 3)) for t in record["theta"]], record["accept_before"],
                 record["accept_after"], "accepted" if record["accepted"] else "rejected")
        if checkpoint_dir is not None:
            save(checkpoint_dir, model, state, embed, label, config_id)
    return model, records


def try_thetas(model, train: List[dict], accept: List[dict], score: Callable, thetas, alive: List[int],
               cfg: AgoraConfig, r: int, progress):
    """Each surviving θ trains the student from the same weights on `train`; returns (the student
    with its starting weights, each θ's record, (the best acceptance score, its weights) or None)."""
    start, tried, best = model.weights(), [], None
    for i in alive:
        setting = dict(thetas[i])
        model.load_weights(start)
        losses = model.fit(train, progress, epochs=setting.get("round_epochs", cfg.round_epochs),
                           lr=setting.get("lr"), schedule=decay(r, cfg.rounds))
        value = score(accept, model.predict(accept))
        tried.append({"setting": label_of(thetas[i]), "accept_score": value, "epoch_losses": losses})
        if best is None or value > best[0]:
            best = (value, model.weights())
    model.load_weights(start)
    return model, tried, best


def round_train(train: List[dict], state: dict, r: int, replay: bool) -> List[dict]:
    """What round `r` trains on: `train`, the points of every earlier accepted round (replay), and
    its own points."""
    earlier = [p for k, rec in enumerate(state["records"][:r]) if rec["accepted"] and replay
               for p in state["points"][k]]
    return list(train) + earlier + state["points"][r]


def label_counts(task: Task, points: List[dict]) -> Dict[str, int]:
    """How many new points each label got (the balance the report shows; a regression's: none)."""
    from collections import Counter
    counts = Counter(str(p["label"]) for p in points if "label" in p and not isinstance(p["label"], float))
    return dict(sorted(counts.items()))


def save(folder, model, state: dict, embed: Memo, label: Memo, config_id: str) -> None:
    """The state after a round: the student's weights and everything the next round reads."""
    from bort import checkpoint
    texts = sorted(embed.known)
    vectors = np.stack([embed.known[t] for t in texts]) if texts else np.zeros((0, 0), np.float32)
    checkpoint.save(folder, {"model": model.net}, None,
                    dict(state, round=len(state["records"]), labels=[[k, v] for k, v in label.known.items()],
                         embedded=texts, config=config_id),
                    arrays={"embeddings": vectors}, trained_only=True)


def resume(folder, model, train, cfg: AgoraConfig, config_id: str, embed: Memo, label: Memo):
    """The state after the last round the checkpoint in `folder` holds -- the student's weights,
    its frozen cache and both memos restored -- or None (a fresh start)."""
    from bort import checkpoint
    saved = checkpoint.load_state(folder)
    if saved is None or saved.get("config") != config_id:
        if saved is not None:
            log.info("Agora checkpoint %s was made by other settings, data or weights; starting at round 1", folder)
        return None
    checkpoint.restore(folder, {"model": model.net}, None, saved, ctx=model.ctx, trained_only=True)
    state = {k: saved[k] for k in ("records", "points", "marks", "alive")}
    state["marks"] = [_tuples(m) for m in state["marks"]]
    for r in range(len(state["records"])):           # the frozen cache, as the rounds built it
        model.warm_cache(round_train(train, state, r, cfg.replay))
    label.known.update((_tuples(k), tuple(v)) for k, v in saved["labels"])
    embed.known.update(zip(saved["embedded"], checkpoint.load_array(folder, "embeddings")))
    log.info("resuming Agora from checkpoint %s after round %d", folder, len(state["records"]))
    return state


def _tuples(value):
    """JSON's lists back into the tuples `shape.inputs` makes."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value
