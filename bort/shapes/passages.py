"""Passage shapes whose records nest their instances: MultiRC's answer options, ReCoRD's queries."""
from __future__ import annotations

from collections import defaultdict
from typing import List

from bort.errors import at
from bort.shapes.base import Options, Row, has_gold, require
from bort.shapes.sentences import Pair, Single


def _passage(record: dict, nested: str, path, line) -> dict:
    """The record's passage object, which holds its text and the `nested` list."""
    passage = record["passage"]
    if not isinstance(passage, dict) or "text" not in passage or nested not in passage:
        raise at(path, line, f"expected passage to be an object with 'text' and '{nested}'")
    return passage


class MultiRC(Pair):
    """MultiRC: passage -> questions -> answer options; one binary instance per answer option, the
    passage paired with question + answer. A question's options stay together when dev is split."""
    name = "multirc"
    label_in_record = False

    def instances(self, task, record, rid, path, line) -> List[dict]:
        passage = _passage(record, "questions", path, line)
        out = []
        for question in passage["questions"]:
            require(question, ("question", "answers", "idx"), path, line)
            group = f'{record.get("idx")}-{question["idx"]}'
            for answer in question["answers"]:
                require(answer, ("text", "idx"), path, line)
                inst = {"id": f'{group}-{answer["idx"]}', "group": group, "text_a": passage["text"],
                        "text_b": f'{question["question"]} {answer["text"]}',
                        "fields": {"question": question["question"], "answer": answer["text"],
                                   "passage_idx": record.get("idx"), "question_idx": question["idx"],
                                   "answer_idx": answer["idx"]}}
                if "label" in answer:
                    if answer["label"] not in (0, 1):
                        raise at(path, line, f"expected answer label 0 or 1, got {answer['label']!r}")
                    inst["label"] = answer["label"]
                out.append(inst)
        return out

    def segments(self, inst) -> List[str]:
        return ["text_b"]

    def group(self, inst):
        """The question: its answer options are read (and scored, by EM) together."""
        return inst["group"]

    def submission_rows(self, task, instances, preds) -> list:
        """Answers nested under their passage and question, as the leaderboard reads them."""
        passages = defaultdict(lambda: defaultdict(list))
        for inst, pred in zip(instances, preds):
            f = inst["fields"]
            passages[f["passage_idx"]][f["question_idx"]].append(
                {"idx": f["answer_idx"], "label": self.submission_value(task, pred)})
        return [{"idx": p, "passage": {"questions": [{"idx": q, "answers": answers}
                                                     for q, answers in sorted(questions.items())]}}
                for p, questions in sorted(passages.items())]


class Record(Options, Single):
    """ReCoRD: a passage with entity spans (inclusive ends) and cloze queries with @placeholder;
    one row per candidate entity filled into the query; gold is any of the answer entities."""
    name = "record"
    label_in_record = False

    def instances(self, task, record, rid, path, line) -> List[dict]:
        passage = _passage(record, "entities", path, line)
        text = passage["text"]
        candidates = []
        for entity in passage["entities"]:
            require(entity, ("start", "end"), path, line)
            if not 0 <= entity["start"] <= entity["end"] < len(text):
                raise at(path, line, f"entity span {entity['start']}..{entity['end']} lies outside the passage")
            name = text[entity["start"]:entity["end"] + 1]
            if name not in candidates:
                candidates.append(name)
        out = []
        for qa in record["qas"]:
            require(qa, ("query", "idx"), path, line)
            if "@placeholder" not in qa["query"]:
                raise at(path, line, "expected the query to contain '@placeholder'")
            inst = {"id": qa["idx"], "text_a": text, "query": qa["query"], "candidates": candidates,
                    "fields": {"passage_idx": record.get("idx")}}
            if "answers" in qa:
                inst["answers"] = sorted({a["text"] for a in qa["answers"]})
            out.append(inst)
        return out

    def rows(self, inst) -> List[Row]:
        return [(inst["text_a"], inst["query"].replace("@placeholder", c)) for c in inst["candidates"]]

    def floor_texts(self, inst) -> List[Row]:
        return self.rows(inst)

    def gold_rows(self, inst) -> List[int]:
        return [k for k, c in enumerate(inst["candidates"]) if c in inst.get("answers", [])]

    def choose(self, inst, best: int):
        return inst["candidates"][best]

    def trainable(self, inst) -> bool:
        return has_gold(inst) and bool(self.gold_rows(inst))

    def segments(self, inst) -> List[str]:
        return ["query"]

    def group(self, inst):
        """The passage: its queries all read it."""
        return inst["text_a"]

    def compatible(self, inst, key, text) -> bool:
        return text != inst[key] and "@placeholder" in text

    def is_miss(self, inst, pred) -> bool:
        return pred not in inst["answers"]

    def with_label(self, point, pred) -> dict:
        point["answers"] = [pred]
        return point

    def submission_value(self, task, pred):
        return pred

    def summary(self, task, labelled) -> dict:
        return {"mean_candidates": round(sum(len(i["candidates"]) for i in labelled) / len(labelled), 6)}

