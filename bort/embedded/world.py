"""The shared world of the embedded tasks: its vocabulary, sentence makers, and the rules that
keep generated data honest (seeded per task and split, labels flipped at the noise rate, no input
repeated across splits). The suite modules (glue, superglue, race) draw their records from it.
"""
from __future__ import annotations

import json
import random
import zlib
from typing import Callable, Dict, Tuple

NAMES = ["Anna", "Ben", "Carla", "David", "Elena", "Frank", "Grace", "Henry", "Irene", "James",
         "Karen", "Luis", "Maria", "Nora", "Oscar", "Paula", "Ravi", "Sara", "Tom", "Vera"]
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


def rng_for(seed: int, task: str, split: str) -> random.Random:
    return random.Random(seed * 1_000_003 + zlib.crc32(f"{task}/{split}".encode()))


def flip(rng, label, labels, noise):
    """With probability `noise`, replace the label by another one (keeps tasks from being solvable)."""
    if rng.random() < noise:
        return rng.choice([l for l in labels if l != label])
    return label


def article(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


# ------------------------------------------------------------------------------------------
# reusable sentence makers
# ------------------------------------------------------------------------------------------

def event(rng):
    subject, pronoun = rng.choice(SUBJECTS)
    obj = rng.choice(sorted(OBJECTS))
    return {"subject": subject, "pronoun": pronoun, "object": obj,
            "verb": OBJECTS[obj][1], "place": rng.choice(PLACES)}


def say(e, subject=None, obj=None, verb=None, place=None, neg=False, extra=""):
    subject = subject or e["subject"]
    words = [subject, "is", "not" if neg else "", verb or e["verb"],
             article(obj or e["object"]), place if place is not None else e["place"], extra]
    return " ".join(w for w in words if w).strip() + "."


def nli_pair(rng, label: str, genre: str = "fiction") -> Tuple[str, str]:
    """(premise, hypothesis) whose relation is `label` in {entailment, neutral, contradiction}."""
    e = event(rng)
    frame = {"fiction": "", "government": "officials reported that ", "slate": "critics noted that ",
             "telephone": "well, i think ", "travel": "visitors say ", "facetoface": "you know, ",
             "letters": "dear friend, ", "nineeleven": "the report states that ", "oup": "in this chapter, ",
             "verbatim": "word for word, "}[genre]
    extra = rng.choice(["", "", "with a friend", "in the morning", "for the first time",
                        "because " + e["pronoun"] + " is happy"])
    negated = rng.random() < 0.2             # a negated premise entails a negated hypothesis
    premise = frame + say(e, extra=extra, neg=negated)
    if negated:
        hyp = {"entailment": say(e, neg=True, place=""),
               "contradiction": say(e, place="", extra=extra),
               "neutral": say(e, neg=True, place="", extra="to win a prize")}[label]
    elif label == "entailment":
        kind = rng.randrange(4)
        if kind == 3:
            hyp = say(e, place="", extra=extra)
        elif kind == 0:
            hyp = say(e, obj=OBJECTS[e["object"]][0], place="")
        elif kind == 1:
            hyp = say(e, place="")
        else:
            hyp = say(e, subject="a person")
    elif label == "contradiction":
        kind = rng.randrange(3)
        if kind == 0:
            hyp = say(e, neg=True, place="")
        elif kind == 1:
            others = [o for o in OBJECTS if OBJECTS[o][1] == e["verb"] and o != e["object"]]
            hyp = say(e, obj=rng.choice(sorted(others)), place="") if others else say(e, neg=True)
        else:
            hyp = f'{e["subject"]} is sleeping {e["place"]}.'
    else:
        hyp = say(e, place="", extra=rng.choice(["for the first time", "because " + e["pronoun"] + " is happy",
                                                   "to win a prize", "for " + rng.choice(NAMES)]))
        if rng.random() < 0.3:     # neutral can also be a detail about an unstated object
            hyp = say(e, obj=rng.choice(sorted(OBJECTS)), place="")
            if hyp.split()[-1].rstrip(".") == e["object"]:
                hyp = say(e, place="", extra="for the first time")
    return premise, hyp


def winograd(rng):
    template, firsts, seconds, adjectives = rng.choice(SCHEMAS)
    a, b = rng.choice(firsts), rng.choice(seconds)
    adj = rng.choice(sorted(adjectives))
    lead = rng.choice(["", f"{rng.choice(NAMES)} said that ", f"{rng.choice(NAMES)} noticed that "])
    return lead + template.format(a=a, b=b, adj=adj) + ".", (a, b), adjectives[adj], adj, template

def nli(rng, noise, genres, labels=("entailment", "neutral", "contradiction")):
    """(premise, hypothesis, label, genre) for the NLI tasks."""
    label = rng.choice(labels)
    genre = rng.choice(genres)
    premise, hyp = nli_pair(rng, label, genre)
    return premise, hyp, flip(rng, label, labels, noise), genre


def two_way(label3: str) -> str:
    return "entailment" if label3 == "entailment" else "not_entailment"

def people_passage(rng, k):
    people = rng.sample(NAMES, k)
    facts = {p: (rng.choice(CITIES), rng.choice(JOBS), rng.choice(sorted(OBJECTS))) for p in people}
    sentences = []
    for p in people:
        c, j, o = facts[p]
        sentences.append(rng.choice([f"{p} lives in {c} and works as {article(j)}.",
                                     f"{p} works as {article(j)} in {c}."]))
        sentences.append(f"{p} owns {article(o)}.")
    rng.shuffle(sentences)
    return people, facts, " ".join(sentences)

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


def inputs_of(item) -> tuple:
    """The inputs of a generated item: everything but its label (and index). It is the
    record-level counterpart of a shape's `inputs` (bort.shapes), which reads loaded instances."""
    if isinstance(item, dict):
        return tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in item.items() if k not in ("label", "idx")))
    return tuple(item[:2])
