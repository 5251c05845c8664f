"""Shapes whose instance is one or two texts: single sentence, pair, regression, WiC, WSC."""
from __future__ import annotations

import re
from typing import List, Tuple

from bort.errors import at
from bort.shapes.base import Classes, Row, Score, has_gold, label_index, require


class Single(Classes):
    """One sentence (CoLA, SST-2): the first input field is the text."""
    name = "single"
    label_in_record = True         # the label is a field of the record itself (not nested)

    def instances(self, task, record, rid, path, line) -> List[dict]:
        inst = {"id": rid, "fields": {f: record[f] for f in task.fields}}
        inst.update(self.texts(task, record, path, line))
        if task.label_field in record:
            inst["label"] = self.parse_label(task, record[task.label_field], path, line)
        return [inst]

    def texts(self, task, record, path, line) -> dict:
        return {"text_a": record[task.fields[0]]}

    def parse_label(self, task, value, path, line):
        return label_index(task, value, path, line)

    def record(self, task, values, label) -> dict:
        """The inverse of `instances` for a flat record (what the embedded data writes): the input
        fields' values and the label as the official file spells it, keyed by the official field
        names. MultiRC, ReCoRD and RACE nest their instances; their generators build the records."""
        return {**dict(zip(task.fields, values)), task.label_field: label}

    def rows(self, inst) -> List[Row]:
        """The (first, second) segments of every row an instance is encoded as."""
        return [(inst["text_a"], inst.get("text_b"))]

    def floor_texts(self, inst) -> List[Row]:
        return [(inst["text_a"], inst.get("text_b", ""))]

    def inputs(self, inst) -> tuple:
        """Everything a model reads of an instance: equal inputs, the same point (the held-out
        guard, shared predictions, Agora's labeller)."""
        return tuple(inst.get(k) for k in ("text_a", "text_b", "question", "query")) + \
            tuple(inst.get("choices", ())) + tuple(inst.get("candidates", ()))

    def trainable(self, inst) -> bool:
        return has_gold(inst)

    # ---- Agora ----
    def segments(self, inst) -> List[str]:
        """Keys of the instance texts that Agora may replace by neighbours."""
        return ["text_a", "text_b"] if inst.get("text_b") is not None else ["text_a"]

    def compatible(self, inst, key: str, text: str) -> bool:
        """Whether a pool text can stand in for `inst[key]` without breaking the task's structure."""
        return text != inst[key]

    def is_miss(self, inst, pred) -> bool:
        return pred != inst["label"]

    def with_label(self, point: dict, pred) -> dict:
        point["label"] = pred
        return point

    # ---- held-out half of dev ----
    def group(self, inst):
        """What makes two instances the same or a near-same input, so that dev is split by it
        (`hold_out`): here the inputs themselves; a shape whose rows share a text (a WSC text, a
        MultiRC question, a ReCoRD or RACE passage) says so."""
        return self.inputs(inst)

    def groups(self, dev: list) -> List[List[int]]:
        """Dev's groups as lists of row indices, in the order of their first row: rows with an equal
        `group` or equal `inputs` are joined (transitively), so no input is in two groups."""
        parent = list(range(len(dev)))

        def root(j):
            while parent[j] != j:
                parent[j] = parent[parent[j]]
                j = parent[j]
            return j
        first = {}
        for j, inst in enumerate(dev):
            for key in (("group", self.group(inst)), ("inputs", self.inputs(inst))):
                k = first.setdefault(key, j)
                a, b = root(j), root(k)
                parent[max(a, b)] = min(a, b)       # the root is a group's first row
        members: dict = {}
        for j in range(len(dev)):
            members.setdefault(root(j), []).append(j)
        return list(members.values())

    def hold_out(self, dev: list, groups: List[List[int]], rng) -> Tuple[list, list]:
        """(Agora's half, the held-out half) of dev, both in file order: a seeded permutation of
        `groups` (`self.groups(dev)`), its first half of the groups held out. When every group is
        one row this is the row-level split the harness made before groups existed."""
        order = rng.permutation(len(groups))
        held = {j for g in order[:len(groups) // 2] for j in groups[g]}
        return [x for j, x in enumerate(dev) if j not in held], [x for j, x in enumerate(dev) if j in held]

    # ---- leaderboard ----
    def submission_rows(self, task, instances, preds) -> list:
        return [{"idx": i["id"], "label": self.submission_value(task, p)} for i, p in zip(instances, preds)]


class Pair(Single):
    """Two texts (MRPC, QQP, the NLI tasks, BoolQ, CB, the diagnostics): the first two input fields."""
    name = "pair"

    def texts(self, task, record, path, line) -> dict:
        return {"text_a": record[task.fields[0]], "text_b": record[task.fields[1]]}


class Regression(Score, Pair):
    """A sentence pair with a similarity score (STS-B, 0..5)."""
    name = "regression"

    def parse_label(self, task, value, path, line):
        try:
            score = float(value)
        except ValueError:
            raise at(path, line, f"expected a float similarity score, got {value!r}") from None
        if not self.low <= score <= self.high:
            raise at(path, line, f"expected a similarity score in [{self.low:g}, {self.high:g}], got {score}")
        return score


class WiC(Pair):
    """Two sentences sharing a target word at given character offsets; the word is put in front
    of the first sentence so the model knows which word to compare."""
    name = "wic"

    def texts(self, task, record, path, line) -> dict:
        for k in ("1", "2"):
            sentence, start, end = record["sentence" + k], record["start" + k], record["end" + k]
            if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(sentence)):
                raise at(path, line, f"expected 0 <= start{k} < end{k} <= len(sentence{k}), "
                                     f"got {start}, {end} for a sentence of {len(sentence)} characters")
        return {"text_a": record["sentence1"], "text_b": record["sentence2"]}

    def rows(self, inst) -> List[Row]:
        return [(f'{inst["fields"]["word"]} : {inst["text_a"]}', inst["text_b"])]

    def inputs(self, inst) -> tuple:
        return (inst["fields"]["word"],) + super().inputs(inst)

    def compatible(self, inst, key, text) -> bool:
        word = inst["fields"]["word"]
        return text != inst[key] and re.search(rf"\b{re.escape(word)}\b", text) is not None


class WSC(Pair):
    """A text and a (pronoun, candidate noun) pair, read as "pronoun refers to noun"."""
    name = "wsc"

    def texts(self, task, record, path, line) -> dict:
        target = record["target"]
        require(target, ("span1_index", "span1_text", "span2_index", "span2_text"), path, line)
        return {"text_a": record["text"], "text_b": f'{target["span2_text"]} refers to {target["span1_text"]}'}

    def segments(self, inst) -> List[str]:
        return ["text_a"]

    def group(self, inst):
        """The text, spaces aside: the official val.jsonl asks about one text in several rows
        (other spans, or the same spans again), some spaced differently ("album." / "album .")."""
        return "".join(inst["text_a"].split())

    def compatible(self, inst, key, text) -> bool:
        target = inst["fields"]["target"]
        words = set(text.rstrip(".").split())
        return text != inst[key] and target["span1_text"].split()[-1] in words and target["span2_text"] in words

    def submission_value(self, task, pred):
        """The label capitalised, "True" / "False": unlike BoolQ and WiC ("true" / "false"), SuperGLUE's
        WSC.jsonl spells it as Python's str(bool) in every public writer we found -- the benchmark's
        own toolkit, nyu-mll/jiant v1 `jiant/evaluate.py` (`_write_winograd_preds`: {0: "False",
        1: "True"}, beside "false"/"true" for BoolQ and WiC) and v2 `jiant/tasks/lib/wsc.py`
        (`str(cls.LABELS[pred])`, where boolq.py and wic.py add `.lower()`), and
        deeppavlov/DeepPavlov `deeppavlov/utils/glue_eval/evaluate_glue_superglue.py`
        (WSC classes ["False", "True"], BoolQ and WiC ["false", "true"])."""
        return str(task.labels[pred])
