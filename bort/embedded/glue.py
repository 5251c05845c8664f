"""GLUE's 11 tasks, generated: each generator keeps its task's input structure and label space
and draws its label from a rule over the shared world (bort.embedded.world); `write` lays the
records out through the task entries' official columns (bort.tasks, bort.formats).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict

from bort.embedded.world import (CITIES, DAYS, GENRES_MATCHED, GENRES_MISMATCHED, ASPECTS, INTENSIFIERS,
                                 JOBS, NAMES, NEGATIVE, OBJECTS, POSITIVE, Unique, event, flip, inputs_of,
                                 nli, rng_for, say, two_way, winograd)
from bort.formats import Tsv
from bort.tasks import TASKS, task_dir, write_split

def _cola(rng, noise):
    """CoLA row [source, label, mark, sentence]: acceptable, or one of four corruptions."""
    for i in [rng.randrange(97)]:
        name, job, city = rng.choice(NAMES), rng.choice(JOBS), rng.choice(CITIES)
        plural = rng.random() < 0.5
        subj = f"the {job}s" if plural else f"the {job}"
        verb = rng.choice([("visit", "visits", "visited"), ("like", "likes", "liked"), ("know", "knows", "knew")])
        tense = rng.randrange(2)
        v = verb[2] if tense else (verb[0] if plural else verb[1])
        words = [subj.split()[0], subj.split()[1], v, name, "in", city]
        ok = rng.random() < 0.7
        if not ok:
            kind = rng.randrange(4)
            if kind == 0 and not tense:                     # agreement error
                words[2] = verb[1] if plural else verb[0]
            elif kind == 1:                                  # order error
                j = rng.randrange(len(words) - 1)
                words[j], words[j + 1] = words[j + 1], words[j]
            elif kind == 2:                                  # missing verb
                del words[2]
            else:                                            # doubled determiner / preposition
                words.insert(4, "in" if rng.random() < 0.5 else "the")
            if words == [subj.split()[0], subj.split()[1], v, name, "in", city]:
                ok = True
        label = flip(rng, int(ok), (0, 1), noise)
        return [f"gj{i:02d}", str(label), "" if label else "*", " ".join(words) + "."]


def _sst(rng, noise):
    a1, a2 = rng.sample(ASPECTS, 2)
    pos1, pos2 = rng.random() < 0.5, rng.random() < 0.5
    def clause(aspect, pos):
        neg = rng.random() < 0.3
        adj = rng.choice(POSITIVE if pos != neg else NEGATIVE)
        return f"the {aspect} was {'not ' if neg else ''}{rng.choice(INTENSIFIERS)}{adj}", pos
    c1, p1 = clause(a1, pos1)
    if rng.random() < 0.4:
        c2, p2 = clause(a2, pos2)
        text, label = f"{c1} , but {c2}", p2              # the clause after "but" decides
    else:
        text, label = c1, p1
    return text, flip(rng, int(label), (0, 1), noise)


def _mrpc(rng, noise):
    name, city, num = rng.choice(NAMES), rng.choice(CITIES), rng.randrange(2, 90)
    job, day = rng.choice(JOBS), rng.choice(DAYS)
    s1 = f"{name} said on {day} that {num} {job}s would move to {city} next year."
    same = rng.random() < 0.68
    if same:
        num2, city2, day2 = num, city, day
    else:
        num2, city2, day2 = num, city, day
        kind = rng.randrange(3)
        if kind == 0:
            num2 = num + rng.choice([-1, 1]) * rng.randrange(1, 9)
        elif kind == 1:
            city2 = rng.choice([c for c in CITIES if c != city])
        else:
            day2 = rng.choice([d for d in DAYS if d != day])
    s2 = rng.choice([f"On {day2}, {name} stated that {num2} {job}s are going to relocate to {city2} next year.",
                     f"{num2} {job}s will move to {city2} next year, {name} announced on {day2}."])
    return s1, s2, flip(rng, int(same), (0, 1), noise)


def _stsb(rng, noise):
    e1, e2 = event(rng), event(rng)
    shared = rng.randrange(4)                                # how many of 3 slots are shared
    keys = ["subject", "object", "place"]
    rng.shuffle(keys)
    mixed = dict(e2)
    for k in keys[:min(shared, 3)]:
        mixed[k] = e1[k]
    mixed["verb"] = OBJECTS[mixed["object"]][1]
    same = sum(mixed[k] == e1[k] for k in ("subject", "object", "place", "verb"))
    score = 5.0 * same / 4 + rng.gauss(0, 0.3 + noise)
    return say(e1), say(mixed), round(min(5.0, max(0.0, score)), 3)


def _qqp(rng, noise):
    obj, city = rng.choice(sorted(OBJECTS)), rng.choice(CITIES)
    q1 = f"how do i find a good {obj} in {city}?"
    dup = rng.random() < 0.37
    obj2, city2 = obj, city
    if not dup:
        if rng.random() < 0.5:
            obj2 = rng.choice([o for o in OBJECTS if o != obj])
        else:
            city2 = rng.choice([c for c in CITIES if c != city])
    q2 = rng.choice([f"what is the best way to get a {obj2} in {city2}?",
                     f"where can i find a good {obj2} in {city2}?"])
    return q1, q2, flip(rng, int(dup), (0, 1), noise)


def _qnli(rng, noise):
    """QNLI: does the sentence contain the slot the question asks for? Every sentence has two of
    three slots (place, day, price), so no single word gives the answer away."""
    name, obj = rng.choice(NAMES), rng.choice(sorted(OBJECTS))
    slots = {"where": f"in {rng.choice(CITIES)}", "when": f"on {rng.choice(DAYS)}",
             "price": f"for {rng.randrange(2, 99)} dollars"}
    ask = rng.choice(["where", "when"])
    present = rng.sample(sorted(slots), 2)
    question = f"{ask} did {name} buy the {obj}?"
    sentence = f"{name} bought the {obj} " + " ".join(slots[k] for k in present) + "."
    label = "entailment" if ask in present else "not_entailment"
    return question, sentence, flip(rng, label, ("entailment", "not_entailment"), noise)


def _wnli(rng, noise):
    """WNLI: the hypothesis replaces the pronoun by one candidate; label 1 if it is the referent."""
    text, (a, b), ref, _, _ = winograd(rng)
    cand = rng.randrange(2)
    clause = text.split(" because ", 1)[1].split(" ", 1)[1]          # drop the pronoun
    return text, f"the {(a, b)[cand]} {clause}", flip(rng, int(cand == ref), (0, 1), noise)


def _parse(sentence: str) -> str:
    return "( " + " ".join(sentence.rstrip(".").split()) + " . )"


# ------------------------------------------------------------------------------------------
# official records
# ------------------------------------------------------------------------------------------

def _record(name: str, values, label, **columns) -> dict:
    """An official record of task `name`: its input fields and label placed by the task's shape
    (bort.shapes), the other columns of the official layout as given."""
    task = TASKS[name]
    return dict(columns, **task.shape.record(task, values, label))


def _mnli_record(i, p, h, label, genre) -> dict:
    return _record("MNLI-m", (p, h), label, index=i, promptID=1000 + i, pairID=f"{1000 + i}{'ecn'[i % 3]}",
                   genre=genre, sentence1_binary_parse=_parse(p), sentence2_binary_parse=_parse(h),
                   sentence1_parse=_parse(p), sentence2_parse=_parse(h),
                   **{f"label{k}": label for k in range(1, 6)})           # every annotator agrees


#: how each task's drawn items become official records (the columns each split keeps are the
#: task entry's); key: what makes two items the same input, for `Unique`
RECORDS = {
    "CoLA": (lambda i, r: _record("CoLA", r[3:], r[1], index=i, source=r[0], original_label=r[2]), lambda r: r[3]),
    "SST-2": (lambda i, r: _record("SST-2", r[:1], r[1], index=i), lambda r: r[0]),
    "MRPC": (lambda i, r: _record("MRPC", r[:2], r[2], **{"index": i, "#1 ID": 2 * i, "#2 ID": 2 * i + 1}),
             inputs_of),
    "STS-B": (lambda i, r: _record("STS-B", r[:2], r[2], index=i, genre="main-captions", filename="MSRvid",
                                   year="2012test", old_index=i, source1="none", source2="none"), inputs_of),
    "QQP": (lambda i, r: _record("QQP", r[:2], r[2], id=i, qid1=2 * i, qid2=2 * i + 1), inputs_of),
    "QNLI": (lambda i, r: _record("QNLI", r[:2], r[2], index=i), inputs_of),
    "RTE": (lambda i, r: _record("RTE", r[:2], two_way(r[2]), index=i), inputs_of),
    "WNLI": (lambda i, r: _record("WNLI", r[:2], r[2], index=i), inputs_of),
}
MAKERS = {"CoLA": _cola, "SST-2": _sst, "MRPC": _mrpc, "STS-B": _stsb, "QQP": _qqp, "QNLI": _qnli,
          "RTE": lambda rng, noise: nli(rng, noise, GENRES_MATCHED), "WNLI": _wnli}
#: raw rows inserted after the fifth record: the real QQP train.tsv has a few broken rows
#: (skipped, with a warning, by the loader)
BROKEN_ROWS = {("QQP", "train"): [[900001, 1, 2, "how do i learn to cook?"], [900002, 3, 4, "why?\t", "", "0"]]}


def write(root: Path, sizes: Dict[str, int], seed: int, noise: float, unique: Unique) -> None:
    for split in ("train", "dev", "test"):
        for name, make in MAKERS.items():
            rng = rng_for(seed, name, split)
            to_record, key = RECORDS[name]
            items = unique.draw(name, lambda: make(rng, noise), sizes[split], key)
            records = [to_record(i, item) for i, item in enumerate(items)]
            records[5:5] = BROKEN_ROWS.get((name, split), [])
            write_split(TASKS[name], root, split, records)
    _write_mnli(root, sizes, seed, noise, unique)


def _write_mnli(root: Path, sizes, seed, noise, unique):
    """MNLI's matched and mismatched sets share one training file; the AX diagnostic is drawn from
    the same family, so that no diagnostic input repeats an MNLI one."""
    def draw(name, split, n, genres):
        rng = rng_for(seed, name, split)
        return unique.draw("MNLI", lambda: nli(rng, noise, genres), n, inputs_of)

    def records(data):
        return [_mnli_record(i, p, h, label, genre) for i, (p, h, label, genre) in enumerate(data)]
    write_split(TASKS["MNLI-m"], root, "train", records(draw("MNLI", "train", sizes["train"], GENRES_MATCHED)))
    for task, part, genres in ((TASKS["MNLI-m"], "matched", GENRES_MATCHED),
                               (TASKS["MNLI-mm"], "mismatched", GENRES_MISMATCHED)):
        for split in ("dev", "test"):
            write_split(task, root, split, records(draw(f"MNLI-{part}", split, sizes[split], genres)))
    ax = TASKS["AX"]
    data = draw("AX", "test", sizes["test"], GENRES_MISMATCHED)
    category = {"entailment": "Lexical entailment", "contradiction": "Negation", "neutral": ""}
    write_split(ax, root, "test", [
        _record("AX", (p, h), label, **{"Lexical Semantics": category[label] if label == "entailment" else "",
                                        "Predicate-Argument Structure": "", "Knowledge": "", "Domain": genre,
                                        "Logic": category[label] if label == "contradiction" else ""})
        for p, h, label, genre in data])
    unlabelled = ax.variants["test"][0]                    # diagnostic.tsv: index, sentence1, sentence2
    Tsv.write(task_dir(root, ax) / unlabelled.file,
              [dict(zip(unlabelled.columns, (i, p, h))) for i, (p, h, _, _) in enumerate(data)], unlabelled.columns)
