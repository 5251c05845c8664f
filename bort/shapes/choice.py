"""Multiple-choice shapes: COPA's two alternatives and RACE's four options per question."""
from __future__ import annotations

from typing import List

from bort.errors import at
from bort.shapes.base import LETTERS, Options, Row
from bort.shapes.sentences import Single


class Copa(Options, Single):
    """COPA: a premise, "cause" or "effect", two alternatives; the question is asked in words."""
    name = "copa"

    def instances(self, task, record, rid, path, line) -> List[dict]:
        inst = {"id": rid, "fields": {f: record[f] for f in task.fields}, "text_a": record["premise"],
                "question": record["question"], "choices": [record["choice1"], record["choice2"]]}
        if record["question"] not in ("cause", "effect"):
            raise at(path, line, f"expected question 'cause' or 'effect', got {record['question']!r}")
        if task.label_field in record:
            if record["label"] not in (0, 1):
                raise at(path, line, f"expected label 0 or 1, got {record['label']!r}")
            inst["label"] = record["label"]
        return [inst]

    def rows(self, inst) -> List[Row]:
        context = f'{inst["text_a"]} what was the {inst["question"]} ?'
        return [(context, c) for c in inst["choices"]]

    def floor_texts(self, inst) -> List[Row]:
        return [(f'{inst["text_a"]} {inst["question"]}', c) for c in inst["choices"]]

    def segments(self, inst) -> List[str]:
        return ["text_a"]

    def submission_value(self, task, pred):
        return int(pred)


class Race(Copa):
    """RACE: one JSON passage per file with parallel lists of questions, four options each and
    answer letters; one instance per question, the passage paired with question + option."""
    name = "race"
    label_in_record = False        # answers are optional per passage

    def instances(self, task, record, rid, path, line) -> List[dict]:
        questions, options = record["questions"], record["options"]
        answers = record.get("answers")
        if len(options) != len(questions) or (answers is not None and len(answers) != len(questions)):
            raise at(path, line, "expected as many options lists and answers as questions")
        out = []
        for q, (question, opts) in enumerate(zip(questions, options)):
            if len(opts) != len(LETTERS):
                raise at(path, line, f"question {q}: expected {len(LETTERS)} options, got {len(opts)}")
            inst = {"id": f'{record.get("id", path.name)}-{q}', "text_a": record["article"],
                    "question": question, "choices": list(opts),
                    "fields": {"file": path.name, "question_index": q}}
            if answers is not None:
                if answers[q] not in LETTERS:
                    raise at(path, line, f"question {q}: expected an answer in A-D, got {answers[q]!r}")
                inst["label"] = LETTERS.index(answers[q])
            out.append(inst)
        return out

    def rows(self, inst) -> List[Row]:
        question = inst["question"]
        return [(inst["text_a"], f"{question} {c}" if question else c) for c in inst["choices"]]

    def segments(self, inst) -> List[str]:
        return ["question"]

    def compatible(self, inst, key, text) -> bool:
        """A pool text stands in for a RACE question only when it is one: it ends with "?" or is a
        cloze with a "_" blank, as RACE's questions are. Whether the passage can answer it is the
        labeler's to say (bort.agora keeps a point only when the labeler is sure of an option)."""
        stripped = text.strip()
        return text != inst[key] and (stripped.endswith("?") or "_" in stripped.split())

    def group(self, inst):
        """The passage: its questions all read it."""
        return inst["text_a"]

    def submission_value(self, task, pred):
        return LETTERS[pred]


