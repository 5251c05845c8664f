"""RACE, generated: passages about people of the shared world (bort.embedded.world) with three
questions of four options each, one JSON file per passage in RACE's download layout."""
from __future__ import annotations

from pathlib import Path
from typing import Dict

from bort.embedded.world import CITIES, JOBS, OBJECTS, Unique, people_passage, rng_for
from bort.tasks import TASKS, write_split

#: encoded rows per passage (3 questions x 4 options): a split's size counts rows
PASSAGE_ROWS = 12

def _race_passage(rng, level, noise):
    k = 3 if level == "middle" else 5
    people, facts, article = people_passage(rng, k)
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


def write(root: Path, sizes: Dict[str, int], seed: int, noise: float, unique: Unique) -> None:
    for split in ("train", "dev", "test"):
        for level in ("middle", "high"):
            rng = rng_for(seed, f"RACE-{level}", split)
            records = unique.draw(f"RACE-{level}", lambda: _race_passage(rng, level, noise),
                                  max(1, sizes[split] // PASSAGE_ROWS), lambda r: r["article"])
            for k, record in enumerate(records):
                record["id"] = f"{level}{k}.txt"
            write_split(TASKS[f"RACE-{level}"], root, split, records)
