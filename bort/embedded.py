"""The embedded default's task data: all 23 tasks generated from a seed, in their official layouts.

No data set can be downloaded here (bort.md section 6), so `prepare` writes each task's files
exactly as the official downloads lay them out (glue_data/<Task>/*.tsv with the official
columns, combined/<Task>/*.jsonl with each task's schema, RACE/<split>/<level>/<n>.txt), and
the same loaders (bort.tasks) read them as they would read the real files.

Each generator keeps its task's input structure and label space and draws its label from a
rule over a small shared world (people, cities, jobs, objects with hypernyms, sentiment words,
causal pairs, polysemous words, Winograd schemas). The rules need the *relation* between
fields -- which object a hypothesis names, which sense a word takes, which slot a question
asks for -- so a bag-of-words floor does not solve them; `noise` flips a share of labels so
no model can be perfect. Test files carry labels (real GLUE test files do not) so that scores
can be measured on data Agora never sees.
"""
from __future__ import annotations

import json
import random
import zlib
from pathlib import Path
from typing import Callable, Dict, List, Tuple

NAMES = ["Anna", "Ben", "Carla", "David", "Elena", "Frank", "Grace", "Henry", "Irene", "James",
         "Karen", "Luis", "Maria", "Nora", "Oscar", "Paula", "Ravi", "Sara", "Tom", "Vera"]
MALE = {"Ben", "David", "Frank", "Henry", "James", "Luis", "Oscar", "Ravi", "Tom"}
CITIES = ["Paris", "London", "Berlin", "Madrid", "Rome", "Vienna", "Dublin", "Oslo", "Lisbon",
          "Prague", "Boston", "Chicago", "Toronto", "Sydney", "Tokyo"]
JOBS = ["teacher", "doctor", "lawyer", "farmer", "painter", "nurse", "pilot", "baker",
        "engineer", "writer", "singer", "driver"]
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
# object -> (hypernym, verb phrase that fits it)
OBJECTS = {
    "dog": ("animal", "walking"), "cat": ("animal", "feeding"), "horse": ("animal", "riding"),
    "rabbit": ("animal", "feeding"), "guitar": ("instrument", "playing"),
    "piano": ("instrument", "playing"), "violin": ("instrument", "playing"),
    "drum": ("instrument", "playing"), "apple": ("fruit", "eating"), "orange": ("fruit", "eating"),
    "banana": ("fruit", "eating"), "car": ("vehicle", "driving"), "truck": ("vehicle", "driving"),
    "bus": ("vehicle", "driving"), "bike": ("vehicle", "riding"), "book": ("text", "reading"),
    "letter": ("text", "reading"), "newspaper": ("text", "reading"),
}
PLACES = ["in the park", "at the station", "in the kitchen", "on the beach", "near the river",
          "in the garden", "at the market", "in the city", "at school", "on the street"]
SUBJECTS = [("a man", "he"), ("a woman", "she"), ("a boy", "he"), ("a girl", "she"),
            ("an old man", "he"), ("a young woman", "she")]
POSITIVE = ["wonderful", "brilliant", "charming", "delightful", "moving", "funny", "clever",
            "beautiful", "gripping", "superb", "warm", "fresh"]
NEGATIVE = ["dull", "boring", "awful", "clumsy", "tedious", "bland", "messy", "weak", "silly",
            "painful", "flat", "lifeless"]
ASPECTS = ["plot", "acting", "music", "script", "ending", "cast", "story", "dialogue", "camera work"]
INTENSIFIERS = ["", "", "very ", "really ", "quite ", "truly "]
CAUSAL = [  # (cause, effect)
    ("it started to rain", "the street got wet"), ("the sun came out", "the snow melted"),
    ("she forgot her keys", "she could not open the door"), ("he ran a long race", "he felt tired"),
    ("the glass fell off the table", "the glass broke"), ("he ate too much", "his stomach hurt"),
    ("the battery died", "the phone turned off"), ("she studied hard", "she passed the exam"),
    ("the wind blew strongly", "the tree fell down"), ("he missed the bus", "he was late for work"),
    ("she turned on the heater", "the room became warm"), ("the milk was old", "the milk smelled bad"),
    ("he told a joke", "everyone laughed"), ("she lost her job", "she looked for a new one"),
    ("the baby was hungry", "the baby cried"), ("he broke his leg", "he went to the hospital"),
    ("the lights went out", "the room was dark"), ("she planted seeds", "flowers grew in the garden"),
    ("he left the window open", "the room got cold"), ("the river flooded", "the road was closed"),
    ("she won the lottery", "she bought a new house"), ("he drank coffee", "he stayed awake"),
    ("the dog barked", "the cat ran away"), ("she cut her finger", "she put on a bandage"),
]
# polysemous word -> two senses, each a list of sentence templates with {w}
SENSES = {
    "bank": (["she sat on the {w} of the river", "the boat drifted toward the muddy {w}",
              "we had a picnic on the grassy {w}"],
             ["he put his money in the {w}", "the {w} approved the loan", "she works at a {w} downtown"]),
    "bat": (["a {w} flew out of the cave", "the {w} sleeps during the day", "we saw a {w} at night"],
            ["he swung the {w} and hit the ball", "she bought a new wooden {w}", "the {w} cracked during the game"]),
    "light": (["turn on the {w} in the hall", "the {w} was too bright", "a {w} shone from the window"],
              ["the box was {w} enough to carry", "she packed a {w} bag", "the feather is very {w}"]),
    "bark": (["the {w} of the tree was rough", "moss grew on the {w}", "he peeled the {w} off the log"],
             ["the dog gave a loud {w}", "we heard a {w} outside", "the {w} woke the baby"]),
    "match": (["he lit a {w} to see", "the {w} burned his finger", "she struck a {w} in the dark"],
              ["they won the football {w}", "the {w} ended in a draw", "we watched the tennis {w}"]),
    "spring": (["flowers bloom in the {w}", "the {w} was warm this year", "we travel every {w}"],
               ["the {w} in the mattress broke", "a metal {w} held the door", "he replaced the old {w}"]),
    "table": (["put the plate on the {w}", "the wooden {w} was heavy", "we sat at the kitchen {w}"],
              ["the {w} shows the results", "see the numbers in the {w}", "the {w} has three columns"]),
    "wave": (["a big {w} hit the boat", "the {w} crashed on the shore", "surfers waited for a {w}"],
             ["she gave a friendly {w}", "he answered with a {w} of his hand", "a {w} from the crowd greeted us"]),
}
# Winograd-style schemas: (template, candidate 1, candidate 2, {adjective: index of referent})
SCHEMAS = [
    ("the {a} did not fit in the {b} because it was too {adj}", ["trophy", "ball", "box", "sofa"],
     ["suitcase", "bag", "car", "room"], {"big": 0, "large": 0, "small": 1, "narrow": 1}),
    ("the {a} could not lift the {b} because he was so {adj}", ["man", "boy", "worker", "farmer"],
     ["child", "student", "patient", "soldier"], {"weak": 0, "tired": 0, "heavy": 1, "big": 1}),
    ("the {a} thanked the {b} because she had been so {adj}", ["woman", "girl", "guest", "patient"],
     ["nurse", "waitress", "teacher", "neighbor"], {"grateful": 0, "relieved": 0, "helpful": 1, "kind": 1}),
]
GENRES_MATCHED = ["fiction", "government", "slate", "telephone", "travel"]
GENRES_MISMATCHED = ["facetoface", "letters", "nineeleven", "oup", "verbatim"]


def _rng(seed: int, task: str, split: str) -> random.Random:
    return random.Random(seed * 1_000_003 + zlib.crc32(f"{task}/{split}".encode()))


def _flip(rng, label, labels, noise):
    """With probability `noise`, replace the label by another one (keeps tasks from being solvable)."""
    if rng.random() < noise:
        return rng.choice([l for l in labels if l != label])
    return label


def _article(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


# ------------------------------------------------------------------------------------------
# reusable sentence makers
# ------------------------------------------------------------------------------------------

def _event(rng):
    subject, pronoun = rng.choice(SUBJECTS)
    obj = rng.choice(sorted(OBJECTS))
    return {"subject": subject, "pronoun": pronoun, "object": obj,
            "verb": OBJECTS[obj][1], "place": rng.choice(PLACES)}


def _say(e, subject=None, obj=None, verb=None, place=None, neg=False, extra=""):
    subject = subject or e["subject"]
    words = [subject, "is", "not" if neg else "", verb or e["verb"],
             _article(obj or e["object"]), place if place is not None else e["place"], extra]
    return " ".join(w for w in words if w).strip() + "."


def nli_pair(rng, label: str, genre: str = "fiction") -> Tuple[str, str]:
    """(premise, hypothesis) whose relation is `label` in {entailment, neutral, contradiction}."""
    e = _event(rng)
    frame = {"fiction": "", "government": "officials reported that ", "slate": "critics noted that ",
             "telephone": "well, i think ", "travel": "visitors say ", "facetoface": "you know, ",
             "letters": "dear friend, ", "nineeleven": "the report states that ", "oup": "in this chapter, ",
             "verbatim": "word for word, "}[genre]
    extra = rng.choice(["", "", "with a friend", "in the morning", "for the first time",
                        "because " + e["pronoun"] + " is happy"])
    negated = rng.random() < 0.2             # a negated premise entails a negated hypothesis
    premise = frame + _say(e, extra=extra, neg=negated)
    if negated:
        hyp = {"entailment": _say(e, neg=True, place=""),
               "contradiction": _say(e, place="", extra=extra),
               "neutral": _say(e, neg=True, place="", extra="to win a prize")}[label]
    elif label == "entailment":
        kind = rng.randrange(4)
        if kind == 3:
            hyp = _say(e, place="", extra=extra)
        elif kind == 0:
            hyp = _say(e, obj=OBJECTS[e["object"]][0], place="")
        elif kind == 1:
            hyp = _say(e, place="")
        else:
            hyp = _say(e, subject="a person")
    elif label == "contradiction":
        kind = rng.randrange(3)
        if kind == 0:
            hyp = _say(e, neg=True, place="")
        elif kind == 1:
            others = [o for o in OBJECTS if OBJECTS[o][1] == e["verb"] and o != e["object"]]
            hyp = _say(e, obj=rng.choice(sorted(others)), place="") if others else _say(e, neg=True)
        else:
            hyp = f'{e["subject"]} is sleeping {e["place"]}.'
    else:
        hyp = _say(e, place="", extra=rng.choice(["for the first time", "because " + e["pronoun"] + " is happy",
                                                   "to win a prize", "for " + rng.choice(NAMES)]))
        if rng.random() < 0.3:     # neutral can also be a detail about an unstated object
            hyp = _say(e, obj=rng.choice(sorted(OBJECTS)), place="")
            if hyp.split()[-1].rstrip(".") == e["object"]:
                hyp = _say(e, place="", extra="for the first time")
    return premise, hyp


# ------------------------------------------------------------------------------------------
# GLUE
# ------------------------------------------------------------------------------------------

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
        label = _flip(rng, int(ok), (0, 1), noise)
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
    return text, _flip(rng, int(label), (0, 1), noise)


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
    return s1, s2, _flip(rng, int(same), (0, 1), noise)


def _stsb(rng, noise):
    e1, e2 = _event(rng), _event(rng)
    shared = rng.randrange(4)                                # how many of 3 slots are shared
    keys = ["subject", "object", "place"]
    rng.shuffle(keys)
    mixed = dict(e2)
    for k in keys[:min(shared, 3)]:
        mixed[k] = e1[k]
    mixed["verb"] = OBJECTS[mixed["object"]][1]
    same = sum(mixed[k] == e1[k] for k in ("subject", "object", "place", "verb"))
    score = 5.0 * same / 4 + rng.gauss(0, 0.3 + noise)
    return _say(e1), _say(mixed), round(min(5.0, max(0.0, score)), 3)


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
    return q1, q2, _flip(rng, int(dup), (0, 1), noise)


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
    return question, sentence, _flip(rng, label, ("entailment", "not_entailment"), noise)


def _winograd(rng):
    template, firsts, seconds, adjectives = rng.choice(SCHEMAS)
    a, b = rng.choice(firsts), rng.choice(seconds)
    adj = rng.choice(sorted(adjectives))
    lead = rng.choice(["", f"{rng.choice(NAMES)} said that ", f"{rng.choice(NAMES)} noticed that "])
    return lead + template.format(a=a, b=b, adj=adj) + ".", (a, b), adjectives[adj], adj, template


def _wnli(rng, noise):
    """WNLI: the hypothesis replaces the pronoun by one candidate; label 1 if it is the referent."""
    text, (a, b), ref, _, _ = _winograd(rng)
    cand = rng.randrange(2)
    clause = text.split(" because ", 1)[1].split(" ", 1)[1]          # drop the pronoun
    return text, f"the {(a, b)[cand]} {clause}", _flip(rng, int(cand == ref), (0, 1), noise)


def _nli(rng, noise, genres, labels=("entailment", "neutral", "contradiction")):
    """(premise, hypothesis, label, genre) for the NLI tasks."""
    label = rng.choice(labels)
    genre = rng.choice(genres)
    premise, hyp = nli_pair(rng, label, genre)
    return premise, hyp, _flip(rng, label, labels, noise), genre


def _two_way(label3: str) -> str:
    return "entailment" if label3 == "entailment" else "not_entailment"


def _parse(sentence: str) -> str:
    return "( " + " ".join(sentence.rstrip(".").split()) + " . )"


# ------------------------------------------------------------------------------------------
# SuperGLUE and RACE
# ------------------------------------------------------------------------------------------

def _people_passage(rng, k):
    people = rng.sample(NAMES, k)
    facts = {p: (rng.choice(CITIES), rng.choice(JOBS), rng.choice(sorted(OBJECTS))) for p in people}
    sentences = []
    for p in people:
        c, j, o = facts[p]
        sentences.append(rng.choice([f"{p} lives in {c} and works as {_article(j)}.",
                                     f"{p} works as {_article(j)} in {c}."]))
        sentences.append(f"{p} owns {_article(o)}.")
    rng.shuffle(sentences)
    return people, facts, " ".join(sentences)


def _boolq(rng, noise):
    people, facts, passage = _people_passage(rng, 3)
    p = rng.choice(people)
    yes = rng.random() < 0.62
    city = facts[p][0] if yes else rng.choice([c for c in CITIES if c != facts[p][0]])
    if rng.random() < 0.5:
        question = f"does {p.lower()} live in {city.lower()}"
    else:
        job = facts[p][1] if yes else rng.choice([j for j in JOBS if j != facts[p][1]])
        question = f"is {p.lower()} {_article(job)}"
    return {"question": question, "passage": passage, "label": _flip(rng, yes, (False, True), noise)}


def _cb(rng, noise):
    """CB: factive verbs (knew, realized) commit the speaker to the clause even when negated,
    non-factive ones (hoped, wondered whether) do not; a negated clause or hypothesis flips it."""
    name, obj, adj = rng.choice(NAMES), rng.choice(sorted(OBJECTS)), rng.choice(POSITIVE + NEGATIVE)
    kind = rng.choices(["factive", "denial", "open"], weights=[45, 40, 15])[0]
    clause_neg, hyp_neg = rng.random() < 0.4, rng.random() < 0.4
    if kind == "factive":
        verb = rng.choice(["knew", "realized", "noticed", "did not know", "forgot"])
        label = "entailment" if clause_neg == hyp_neg else "contradiction"
    elif kind == "denial":
        verb = rng.choice(["denied", "doubted", "did not believe"])
        clause_neg = False
        label = "contradiction" if not hyp_neg else "entailment"
    else:
        verb = rng.choice(["hoped", "guessed", "wondered whether"])
        label = "neutral"
    connective = "" if verb.endswith("whether") else " that"
    premise = f"{name} {verb}{connective} the {obj} was {'not ' if clause_neg else ''}{adj}."
    hyp = f"the {obj} was {'not ' if hyp_neg else ''}{adj}."
    return {"premise": premise, "hypothesis": hyp,
            "label": _flip(rng, label, ("contradiction", "entailment", "neutral"), noise)}


def _copa(rng, noise):
    i, j = rng.sample(range(len(CAUSAL)), 2)
    question = rng.choice(["cause", "effect"])
    cause, effect = CAUSAL[i]
    premise, right = (effect, cause) if question == "cause" else (cause, effect)
    wrong = CAUSAL[j][0] if question == "cause" else CAUSAL[j][1]
    label = rng.randrange(2)
    choices = [right, wrong] if label == 0 else [wrong, right]
    return {"premise": premise.capitalize() + ".", "choice1": choices[0].capitalize() + ".",
            "choice2": choices[1].capitalize() + ".", "question": question,
            "label": _flip(rng, label, (0, 1), noise)}


def _multirc(rng, noise, idx):
    people, facts, text = _people_passage(rng, 3)
    questions = []
    for q, p in enumerate(rng.sample(people, 2)):
        answers = []
        truth = facts[p][0]
        options = [truth] + rng.sample([c for c in CITIES if c != truth], 3)
        rng.shuffle(options)
        for a, city in enumerate(options):
            answers.append({"text": f"in {city}", "idx": a,
                            "label": _flip(rng, int(city == truth), (0, 1), noise)})
        questions.append({"question": f"where does {p} live?", "answers": answers, "idx": q})
    return {"idx": idx, "version": 1.1, "passage": {"text": text, "questions": questions}}


def _record(rng, idx):
    people, facts, text = _people_passage(rng, 3)
    entities, seen = [], set()
    for p in people:
        start = text.find(p)
        while start >= 0:
            if (start, p) not in seen:
                entities.append({"start": start, "end": start + len(p) - 1})
                seen.add((start, p))
            start = text.find(p, start + 1)
    entities.sort(key=lambda e: e["start"])
    p = rng.choice(people)
    c, j, o = facts[p]
    query = rng.choice([f"@placeholder is the one who lives in {c}.", f"@placeholder owns {_article(o)}."])
    # a query may be ambiguous when two people share the fact: every matching person is gold
    gold = [q for q in people if (facts[q][0] == c if "lives" in query else facts[q][2] == o)]
    answers = []
    for g in gold:
        start = text.find(g)
        answers.append({"start": start, "end": start + len(g) - 1, "text": g})
    return {"source": "embedded", "idx": idx,
            "passage": {"text": text, "entities": entities},
            "qas": [{"query": query, "answers": answers, "idx": idx}]}


def _wic(rng, noise):
    word = rng.choice(sorted(SENSES))
    same = rng.random() < 0.5
    s1_sense = rng.randrange(2)
    s2_sense = s1_sense if same else 1 - s1_sense
    t1 = rng.choice(SENSES[word][s1_sense])
    t2 = rng.choice([t for t in SENSES[word][s2_sense] if t != t1] or SENSES[word][s2_sense])
    s1 = f"{rng.choice(NAMES)} said {t1.format(w=word)}."
    s2 = f"{rng.choice(NAMES)} said {t2.format(w=word)}."
    st1, st2 = s1.find(word), s2.find(word)
    return {"word": word, "sentence1": s1, "sentence2": s2, "start1": st1, "end1": st1 + len(word),
            "start2": st2, "end2": st2 + len(word), "label": _flip(rng, same, (False, True), noise)}


def _wsc(rng, noise):
    text, (a, b), ref, adj, template = _winograd(rng)
    words = text.rstrip(".").split()
    cand = rng.randrange(2)
    noun = (a, b)[cand]
    pronoun_index = next(k for k, w in enumerate(words) if w in ("it", "he", "she"))
    noun_index = words.index(noun)
    return {"text": text, "target": {"span1_index": noun_index, "span1_text": f"the {noun}",
                                     "span2_index": pronoun_index, "span2_text": words[pronoun_index]},
            "label": _flip(rng, cand == ref, (False, True), noise)}


def _axg(rng, noise, pair_id):
    job, other = rng.sample(JOBS, 2)
    refers_job = rng.random() < 0.5
    verb = "asked" if refers_job else "told"
    base_label = rng.random() < 0.5
    pairs = []
    for pronoun in ("he", "she"):
        premise = (f"The {job} {verb} the {other} whether {pronoun} could help."
                   if refers_job else f"The {job} {verb} the {other} that {pronoun} could help.")
        hyp_target = job if (refers_job == base_label) else other
        hyp = f"The {hyp_target} could help."
        label = "entailment" if (hyp_target == job) == refers_job else "not_entailment"
        pairs.append({"premise": premise, "hypothesis": hyp, "label": label, "pair_id": pair_id})
    return pairs


def _race_passage(rng, level, noise):
    k = 3 if level == "middle" else 5
    people, facts, article = _people_passage(rng, k)
    questions, options, answers = [], [], []
    for p in rng.sample(people, min(len(people), 3)):
        slot = rng.randrange(3)
        truth = facts[p][slot]
        pool = [CITIES, JOBS, sorted(OBJECTS)][slot]
        opts = [truth] + rng.sample([x for x in pool if x != truth], 3)
        rng.shuffle(opts)
        q = [f"Where does {p} live?", f"What is {p}'s job?", f"What does {p} own?"][slot]
        if level == "high":
            q = [f"According to the passage, which city is home to {p}?",
                 f"Which of the following best describes {p}'s work?",
                 f"Which thing belongs to {p}?"][slot]
        answer = "ABCD"[opts.index(truth)]
        if rng.random() < noise:
            answer = rng.choice([x for x in "ABCD" if x != answer])
        questions.append(q)
        options.append(opts)
        answers.append(answer)
    return {"answers": answers, "options": options, "questions": questions, "article": article}


class Unique:
    """Draws examples so that no input repeats within a task family across splits.

    Generated from templates, a dev or test point could otherwise repeat a training point and
    the held-out scores would not be held out. Splits are drawn train first, so dev and test
    never contain a training input. A family is the set of tasks scored by one model (MNLI-m,
    MNLI-mm and AX; SuperGLUE RTE, AX-b and AX-g)."""

    def __init__(self):
        self.seen: Dict[str, set] = {}

    def draw(self, family: str, make: Callable, n: int, key: Callable, attempts: int = 50) -> list:
        seen = self.seen.setdefault(family, set())
        out, tries = [], 0
        while len(out) < n and tries < attempts * n:
            item = make()
            tries += 1
            k = key(item)
            if k not in seen:
                seen.add(k)
                out.append(item)
        return out


def _key_inputs(item) -> tuple:
    """The inputs of a generated item: everything but the label (and the index)."""
    if isinstance(item, dict):
        return tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in item.items() if k not in ("label", "idx")))
    return tuple(item[:2])


# ------------------------------------------------------------------------------------------
# writers in the official layouts
# ------------------------------------------------------------------------------------------

def _write_tsv(path: Path, header, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        if header is not None:
            handle.write("\t".join(header) + "\n")
        for row in rows:
            handle.write("\t".join(str(v) for v in row) + "\n")


def _write_jsonl(path: Path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, sort_keys=True) + "\n")


SPLITS = ("train", "dev", "test")
#: Encoded rows (passage + one answer / candidate / option) per generated record of the passage
#: tasks. A split's size counts rows, as for every other task, so that each task costs about the
#: same to fine-tune: a MultiRC passage has 2 questions x 4 answers, a ReCoRD query 3 candidate
#: entities, a RACE passage 3 questions x 4 options.
PASSAGE_ROWS = {"MultiRC": 8, "ReCoRD": 3, "RACE": 12}


def write_glue(root: Path, sizes: Dict[str, int], seed: int, noise: float, unique: "Unique") -> None:
    g = root / "glue_data"
    for split in SPLITS:
        n = sizes[split]

        def draw(name, make, key=_key_inputs, family=None):
            rng = _rng(seed, name, split)
            return unique.draw(family or name, lambda: make(rng), n, key)
        rows = draw("CoLA", lambda r: _cola(r, noise), key=lambda row: row[3])
        if split == "test":
            _write_tsv(g / "CoLA/test.tsv", ["index", "sentence", "label"],
                       [[i, r[3], r[1]] for i, r in enumerate(rows)])
        else:
            _write_tsv(g / f"CoLA/{split}.tsv", None, rows)
        data = draw("SST-2", lambda r: _sst(r, noise), key=lambda t: t[0])
        if split == "test":
            _write_tsv(g / "SST-2/test.tsv", ["index", "sentence", "label"], [[i, s, l] for i, (s, l) in enumerate(data)])
        else:
            _write_tsv(g / f"SST-2/{split}.tsv", ["sentence", "label"], data)
        data = draw("MRPC", lambda r: _mrpc(r, noise))
        if split == "test":
            _write_tsv(g / "MRPC/test.tsv", ["index", "#1 ID", "#2 ID", "#1 String", "#2 String", "Quality"],
                       [[i, 2 * i, 2 * i + 1, a, b, l] for i, (a, b, l) in enumerate(data)])
        else:
            _write_tsv(g / f"MRPC/{split}.tsv", ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"],
                       [[l, 2 * i, 2 * i + 1, a, b] for i, (a, b, l) in enumerate(data)])
        data = draw("STS-B", lambda r: _stsb(r, noise))
        head = ["index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2", "score"]
        _write_tsv(g / f"STS-B/{split}.tsv", head,
                   [[i, "main-captions", "MSRvid", "2012test", i, "none", "none", a, b, s]
                    for i, (a, b, s) in enumerate(data)])
        data = draw("QQP", lambda r: _qqp(r, noise))
        rows = [[i, 2 * i, 2 * i + 1, a, b, l] for i, (a, b, l) in enumerate(data)]
        if split == "train":                                # the real train.tsv has a few broken rows
            rows[5:5] = [[900001, 1, 2, "how do i learn to cook?"], [900002, 3, 4, "why?\t", "", "0"]]
        if split == "test":
            _write_tsv(g / "QQP/test.tsv", ["id", "question1", "question2", "is_duplicate"],
                       [[i, a, b, l] for i, (a, b, l) in enumerate(data)])
        else:
            _write_tsv(g / f"QQP/{split}.tsv", ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"], rows)
        data = draw("QNLI", lambda r: _qnli(r, noise))
        _write_tsv(g / f"QNLI/{split}.tsv", ["index", "question", "sentence", "label"],
                   [[i, a, b, l] for i, (a, b, l) in enumerate(data)])
        data = draw("RTE", lambda r: _nli(r, noise, GENRES_MATCHED))
        _write_tsv(g / f"RTE/{split}.tsv", ["index", "sentence1", "sentence2", "label"],
                   [[i, p, h, _two_way(l)] for i, (p, h, l, _) in enumerate(data)])
        data = draw("WNLI", lambda r: _wnli(r, noise))
        _write_tsv(g / f"WNLI/{split}.tsv", ["index", "sentence1", "sentence2", "label"],
                   [[i, a, b, l] for i, (a, b, l) in enumerate(data)])
    _write_mnli(g / "MNLI", sizes, seed, noise, unique)
    _write_ax(g / "diagnostic", sizes["test"], seed, noise, unique)


def _write_mnli(folder: Path, sizes, seed, noise, unique):
    head = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
            "sentence1_parse", "sentence2_parse", "sentence1", "sentence2"]

    def rows(data, with_labels, n_annotators):
        out = []
        for i, (p, h, l, genre) in enumerate(data):
            row = [i, 1000 + i, f"{1000 + i}{'ecn'[i % 3]}", genre, _parse(p), _parse(h), _parse(p), _parse(h), p, h]
            if with_labels:
                row += [l] * n_annotators + [l]
            out.append(row)
        return out

    def draw(name, split, n, genres):
        rng = _rng(seed, name, split)
        return unique.draw("MNLI", lambda: _nli(rng, noise, genres), n, _key_inputs)
    train = draw("MNLI", "train", sizes["train"], GENRES_MATCHED)
    _write_tsv(folder / "train.tsv", head + ["label1", "gold_label"], rows(train, True, 1))
    dev_head = head + [f"label{k}" for k in range(1, 6)] + ["gold_label"]
    for part, genres in (("matched", GENRES_MATCHED), ("mismatched", GENRES_MISMATCHED)):
        dev = draw(f"MNLI-{part}", "dev", sizes["dev"], genres)
        _write_tsv(folder / f"dev_{part}.tsv", dev_head, rows(dev, True, 5))
        test = draw(f"MNLI-{part}", "test", sizes["test"], genres)
        _write_tsv(folder / f"test_{part}.tsv", head + ["gold_label"], rows(test, True, 0))


def _write_ax(folder: Path, n, seed, noise, unique):
    rng = _rng(seed, "AX", "test")
    data = unique.draw("MNLI", lambda: _nli(rng, noise, GENRES_MISMATCHED), n, _key_inputs)
    _write_tsv(folder / "diagnostic.tsv", ["index", "sentence1", "sentence2"],
               [[i, p, h] for i, (p, h, _, _) in enumerate(data)])
    category = {"entailment": "Lexical entailment", "contradiction": "Negation", "neutral": ""}
    _write_tsv(folder / "diagnostic-full.tsv",
               ["Lexical Semantics", "Predicate-Argument Structure", "Logic", "Knowledge", "Domain",
                "Premise", "Hypothesis", "Label"],
               [[category[l] if l == "entailment" else "", "", category[l] if l == "contradiction" else "",
                 "", g, p, h, l] for p, h, l, g in data])


def write_superglue(root: Path, sizes: Dict[str, int], seed: int, noise: float, unique: "Unique") -> None:
    sg = root / "combined"
    files = {"train": "train.jsonl", "dev": "val.jsonl", "test": "test.jsonl"}
    simple: Dict[str, Callable] = {"BoolQ": _boolq, "CB": _cb, "COPA": _copa, "WiC": _wic, "WSC": _wsc}
    for split in SPLITS:
        n = sizes[split]
        for name, make in simple.items():
            rng = _rng(seed, name, split)
            records = unique.draw(name, lambda: make(rng, noise), n, _key_inputs)
            _write_jsonl(sg / name / files[split], [dict(r, idx=i) for i, r in enumerate(records)])
        rng = _rng(seed, "MultiRC", split)
        counter = iter(range(10 ** 9))
        records = unique.draw("MultiRC", lambda: _multirc(rng, noise, next(counter)), max(1, n // PASSAGE_ROWS["MultiRC"]),
                              lambda r: r["passage"]["text"])
        _write_jsonl(sg / "MultiRC" / files[split], [dict(r, idx=i) for i, r in enumerate(records)])
        rng = _rng(seed, "ReCoRD", split)
        records = unique.draw("ReCoRD", lambda: _record(rng, 0), max(1, n // PASSAGE_ROWS["ReCoRD"]),
                              lambda r: (r["passage"]["text"], r["qas"][0]["query"]))
        for i, r in enumerate(records):
            r["idx"] = r["qas"][0]["idx"] = i
        _write_jsonl(sg / "ReCoRD" / files[split], records)
        rng = _rng(seed, "SuperGLUE-RTE", split)
        data = unique.draw("SuperGLUE-RTE", lambda: _nli(rng, noise, GENRES_MATCHED), n, _key_inputs)
        _write_jsonl(sg / "RTE" / files[split],
                     [{"premise": p, "hypothesis": h, "label": _two_way(l), "idx": i} for i, (p, h, l, _) in enumerate(data)])
    rng = _rng(seed, "AX-b", "test")
    data = unique.draw("SuperGLUE-RTE", lambda: _nli(rng, noise, GENRES_MISMATCHED), sizes["test"], _key_inputs)
    _write_jsonl(sg / "AX-b" / "AX-b.jsonl",
                 [{"sentence1": p, "sentence2": h, "label": _two_way(l), "idx": i, "logic": g}
                  for i, (p, h, l, g) in enumerate(data)])
    rng = _rng(seed, "AX-g", "test")
    counter = iter(range(10 ** 9))
    pairs = unique.draw("SuperGLUE-RTE", lambda: _axg(rng, noise, next(counter)), sizes["test"] // 2,
                        lambda pair: tuple((r["premise"], r["hypothesis"]) for r in pair))
    records = [r for k, pair in enumerate(pairs) for r in pair]
    for k, r in enumerate(records):
        r["pair_id"] = k // 2
    _write_jsonl(sg / "AX-g" / "AX-g.jsonl", [dict(r, idx=i) for i, r in enumerate(records)])


def write_race(root: Path, sizes: Dict[str, int], seed: int, noise: float, unique: "Unique") -> None:
    for split in SPLITS:
        for level in ("middle", "high"):
            rng = _rng(seed, f"RACE-{level}", split)
            folder = root / "RACE" / split / level
            folder.mkdir(parents=True, exist_ok=True)
            records = unique.draw(f"RACE-{level}", lambda: _race_passage(rng, level, noise),
                                  max(1, sizes[split] // PASSAGE_ROWS["RACE"]), lambda r: r["article"])
            for k, record in enumerate(records):
                record["id"] = f"{level}{k}.txt"
                (folder / f"{k}.txt").write_text(json.dumps(record, sort_keys=True), encoding="utf-8")


def write_all(root, sizes: Dict[str, int], seed: int, noise: float) -> None:
    """Write all 23 tasks below `root` (glue_data/, combined/, RACE/)."""
    root = Path(root)
    unique = Unique()
    write_glue(root, sizes, seed, noise, unique)
    write_superglue(root, sizes, seed, noise, unique)
    write_race(root, sizes, seed, noise, unique)
