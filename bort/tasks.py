"""The 23 tasks of GLUE, SuperGLUE and RACE as data, and loaders for their official formats.

Every task is one declarative `Task` entry (bort.md section 5): where its files live, which
format they are in, which fields are inputs, the label set (or regression), the metrics the
leaderboard reports, and -- for the diagnostic sets -- which task's model scores them. Loaders
and metrics are picked from the entry, so adding task 24 is one entry, not a class.

Loaders read the *official* layouts and their quirks: CoLA's headerless train/dev TSV, MNLI's
many columns and matched/mismatched dev files, QQP's few malformed rows (skipped, as GluonNLP's
own loader does), STS-B's float scores, unlabelled GLUE test files, SuperGLUE's per-task JSONL
schemas (MultiRC and ReCoRD nested), and RACE's one JSON file per passage. A label column on a
test file is optional: real GLUE test files have none, the embedded data carries one so scores
can be measured on data that Agora never saw (bort.md section 4).

Every loader returns *instances*, plain dicts in one of a few shapes:
  single / pair / wic / wsc : {"id", "text_a", ["text_b"], "label"}        label = index in labels
  regression                : {"id", "text_a", "text_b", "label"}           label = float
  choice (COPA, RACE)       : {"id", "text_a", "question", "choices", "label"}   label = index
  multirc                   : answer-level {"id", "group", "text_a", "text_b", "label"}
  record                    : {"id", "text_a", "query", "candidates", "answers"}
plus "fields", the official record's input fields, for shape-specific models.

CLI: `python -m bort.tasks list [--json]`, `python -m bort.tasks check TASK DIR [--json]`.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from bort.errors import BortError, at, cli_main, setup_logging

log = logging.getLogger(__name__)

#: folder of each suite below a data root, as the official downloads name them
SUITE_DIRS = {"glue": "glue_data", "superglue": "combined", "race": "RACE"}


@dataclass(frozen=True)
class Task:
    """One task of the benchmark, declaratively (see module docstring)."""
    name: str
    suite: str                      # glue | superglue | race
    folder: str                     # below the suite directory
    format: str                     # tsv | jsonl | race
    shape: str                      # single | pair | regression | choice | multirc | record | wic | wsc
    splits: Dict[str, str]          # split -> file name (RACE: split -> sub-folder)
    fields: Tuple[str, ...]         # input fields of the official record
    label_field: Optional[str]
    labels: Optional[Tuple] = None  # None for regression / choice / record
    metrics: Tuple[str, ...] = ("acc",)
    scored_by: Optional[str] = None  # diagnostics: the task whose model scores this set
    columns: Optional[Tuple[str, ...]] = None  # headerless TSV (CoLA train/dev)
    skip_malformed: bool = False    # QQP: rows with a wrong field count are skipped, not fatal
    id_field: Optional[str] = None
    extra: Dict[str, str] = field(default_factory=dict)  # split-specific notes (e.g. labelled AX)

    @property
    def is_diagnostic(self) -> bool:
        return self.scored_by is not None


_GLUE_NLI3 = ("contradiction", "entailment", "neutral")
_TWO_WAY = ("entailment", "not_entailment")
_GLUE = {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"}
_SG = {"train": "train.jsonl", "dev": "val.jsonl", "test": "test.jsonl"}
_RACE = {"train": "train", "dev": "dev", "test": "test"}

TASKS: Dict[str, Task] = {t.name: t for t in [
    # ---- GLUE (11) ----
    Task("CoLA", "glue", "CoLA", "tsv", "single", _GLUE, ("sentence",), "label", ("0", "1"),
         ("mcc",), columns=("source", "label", "original_label", "sentence"), id_field="index"),
    Task("SST-2", "glue", "SST-2", "tsv", "single", _GLUE, ("sentence",), "label", ("0", "1"),
         ("acc",), id_field="index"),
    Task("MRPC", "glue", "MRPC", "tsv", "pair", _GLUE, ("#1 String", "#2 String"), "Quality",
         ("0", "1"), ("f1", "acc"), id_field="index"),
    Task("STS-B", "glue", "STS-B", "tsv", "regression", _GLUE, ("sentence1", "sentence2"), "score",
         None, ("pearson", "spearman"), id_field="index"),
    Task("QQP", "glue", "QQP", "tsv", "pair", _GLUE, ("question1", "question2"), "is_duplicate",
         ("0", "1"), ("f1", "acc"), skip_malformed=True, id_field="id"),
    Task("MNLI-m", "glue", "MNLI", "tsv", "pair",
         {"train": "train.tsv", "dev": "dev_matched.tsv", "test": "test_matched.tsv"},
         ("sentence1", "sentence2"), "gold_label", _GLUE_NLI3, ("acc",), id_field="index"),
    Task("MNLI-mm", "glue", "MNLI", "tsv", "pair",
         {"train": "train.tsv", "dev": "dev_mismatched.tsv", "test": "test_mismatched.tsv"},
         ("sentence1", "sentence2"), "gold_label", _GLUE_NLI3, ("acc",), id_field="index"),
    Task("QNLI", "glue", "QNLI", "tsv", "pair", _GLUE, ("question", "sentence"), "label",
         _TWO_WAY, ("acc",), id_field="index"),
    Task("RTE", "glue", "RTE", "tsv", "pair", _GLUE, ("sentence1", "sentence2"), "label",
         _TWO_WAY, ("acc",), id_field="index"),
    Task("WNLI", "glue", "WNLI", "tsv", "pair", _GLUE, ("sentence1", "sentence2"), "label",
         ("0", "1"), ("acc",), id_field="index"),
    # AX: the public diagnostic.tsv is unlabelled; diagnostic-full.tsv carries the labels.
    Task("AX", "glue", "diagnostic", "tsv", "pair",
         {"test": "diagnostic-full.tsv"}, ("Premise", "Hypothesis"), "Label", _GLUE_NLI3,
         ("mcc",), scored_by="MNLI-m",
         extra={"unlabelled_test": "diagnostic.tsv"}),
    # ---- SuperGLUE (10) ----
    Task("BoolQ", "superglue", "BoolQ", "jsonl", "pair", _SG, ("passage", "question"), "label",
         (False, True), ("acc",), id_field="idx"),
    Task("CB", "superglue", "CB", "jsonl", "pair", _SG, ("premise", "hypothesis"), "label",
         _GLUE_NLI3, ("macro_f1", "acc"), id_field="idx"),
    Task("COPA", "superglue", "COPA", "jsonl", "choice", _SG,
         ("premise", "question", "choice1", "choice2"), "label", None, ("acc",), id_field="idx"),
    Task("MultiRC", "superglue", "MultiRC", "jsonl", "multirc", _SG,
         ("passage",), "label", None, ("f1a", "em"), id_field="idx"),
    Task("ReCoRD", "superglue", "ReCoRD", "jsonl", "record", _SG,
         ("passage", "qas"), "answers", None, ("record_f1", "record_em"), id_field="idx"),
    Task("SuperGLUE-RTE", "superglue", "RTE", "jsonl", "pair", _SG, ("premise", "hypothesis"),
         "label", _TWO_WAY, ("acc",), id_field="idx"),
    Task("WiC", "superglue", "WiC", "jsonl", "wic", _SG,
         ("word", "sentence1", "sentence2", "start1", "end1", "start2", "end2"), "label",
         (False, True), ("acc",), id_field="idx"),
    Task("WSC", "superglue", "WSC", "jsonl", "wsc", _SG, ("text", "target"), "label",
         (False, True), ("acc",), id_field="idx"),
    Task("AX-b", "superglue", "AX-b", "jsonl", "pair", {"test": "AX-b.jsonl"},
         ("sentence1", "sentence2"), "label", _TWO_WAY, ("mcc",), scored_by="SuperGLUE-RTE",
         id_field="idx"),
    Task("AX-g", "superglue", "AX-g", "jsonl", "pair", {"test": "AX-g.jsonl"},
         ("premise", "hypothesis"), "label", _TWO_WAY, ("gender_parity", "acc"),
         scored_by="SuperGLUE-RTE", id_field="idx"),
    # ---- RACE (2) ----
    Task("RACE-middle", "race", "middle", "race", "choice", _RACE,
         ("article", "questions", "options"), "answers", None, ("acc",), id_field="id"),
    Task("RACE-high", "race", "high", "race", "choice", _RACE,
         ("article", "questions", "options"), "answers", None, ("acc",), id_field="id"),
]}

#: the leaderboards' spelling of the SuperGLUE RTE task (its registry key avoids GLUE's RTE)
DISPLAY_NAMES = {"SuperGLUE-RTE": "RTE"}


def get_task(name: str) -> Task:
    """The registry entry, or an error that lists every valid name."""
    try:
        return TASKS[name]
    except KeyError:
        raise BortError(f"unknown task {name!r}; expected one of: {', '.join(TASKS)}") from None


def map_labels(source: Task, target: Task, preds) -> list:
    """A parent's label indices on a diagnostic's label set (3-way NLI -> 2-way: anything not
    in the target's labels becomes not_entailment)."""
    if source.labels == target.labels:
        return list(preds)
    out = []
    for p in preds:
        label = source.labels[p]
        out.append(target.labels.index(label) if label in target.labels
                   else target.labels.index("not_entailment"))
    return out


def task_dir(root, task: Task) -> Path:
    """The task's official folder below a data root holding glue_data/, combined/ and RACE/."""
    return Path(root) / SUITE_DIRS[task.suite] / (task.folder if task.suite != "race" else "")


# --------------------------------------------------------------------------------------------
# label handling shared by every format
# --------------------------------------------------------------------------------------------

def _label_index(task: Task, value, path, line):
    if task.labels is None:
        raise AssertionError("classification label on a task without a label set")
    for i, known in enumerate(task.labels):
        if value == known or (isinstance(known, str) and str(value) == known):
            return i
    raise at(path, line, f"unknown label {value!r} in field {task.label_field!r}; "
                         f"expected one of {list(task.labels)}")


def _require(record: dict, keys, path, line):
    for key in keys:
        if key not in record:
            raise at(path, line, f"missing required field {key!r}")


# --------------------------------------------------------------------------------------------
# GLUE TSV
# --------------------------------------------------------------------------------------------

def _read_tsv_rows(path: Path):
    """Yield (line number, fields). GLUE files contain bare quotes, so no CSV quoting."""
    with open(path, encoding="utf-8", newline="") as handle:
        for number, raw in enumerate(handle, start=1):
            raw = raw.rstrip("\r\n")
            if raw == "":
                continue
            yield number, raw.split("\t")


def load_tsv(task: Task, path: Path, split: str) -> List[dict]:
    path = Path(path)
    rows = _read_tsv_rows(path)
    if task.columns is not None and split != "test":
        header = list(task.columns)                         # CoLA train/dev: no header
    else:
        try:
            _, header = next(rows)
        except StopIteration:
            raise at(path, 1, "empty file; expected a header row") from None
    for needed in task.fields:
        if needed not in header:
            raise at(path, 1, f"header lacks column {needed!r}; expected columns "
                              f"{list(task.fields)} (got {header})")
    has_label = task.label_field in header
    if split != "test" and not has_label:
        raise at(path, 1, f"header lacks label column {task.label_field!r}")
    instances, skipped = [], 0
    for number, values in rows:
        if len(values) != len(header):
            if task.skip_malformed:
                skipped += 1
                continue
            raise at(path, number, f"expected {len(header)} tab-separated fields, got {len(values)}")
        record = dict(zip(header, values))
        inst = {"id": record.get(task.id_field, str(len(instances))),
                "text_a": record[task.fields[0]],
                "fields": {f: record[f] for f in task.fields}}
        if len(task.fields) > 1:
            inst["text_b"] = record[task.fields[1]]
        if has_label:
            inst["label"] = _tsv_label(task, record[task.label_field], path, number)
        instances.append(inst)
    if skipped:
        log.warning("%s: skipped %d malformed row(s) (a known quirk of %s)", path, skipped, task.name)
    return instances


def _tsv_label(task: Task, value: str, path, line):
    if task.labels is None:                                  # STS-B
        try:
            score = float(value)
        except ValueError:
            raise at(path, line, f"expected a float similarity score, got {value!r}") from None
        if not 0.0 <= score <= 5.0:
            raise at(path, line, f"expected a similarity score in [0, 5], got {score}")
        return score
    return _label_index(task, value, path, line)


# --------------------------------------------------------------------------------------------
# SuperGLUE JSONL
# --------------------------------------------------------------------------------------------

def _read_jsonl(path: Path):
    with open(path, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except json.JSONDecodeError as err:
                raise at(path, number, f"invalid JSON ({err.msg}); expected one object per line") from None
            if not isinstance(record, dict):
                raise at(path, number, "expected a JSON object")
            yield number, record


def load_jsonl(task: Task, path: Path, split: str) -> List[dict]:
    path = Path(path)
    instances: List[dict] = []
    for number, record in _read_jsonl(path):
        _require(record, task.fields, path, number)
        rid = record.get(task.id_field, len(instances))
        labelled = task.label_field in record
        if split != "test" and task.shape not in ("multirc", "record"):
            _require(record, [task.label_field], path, number)
        if task.shape == "multirc":
            instances.extend(_multirc(task, record, path, number))
            continue
        if task.shape == "record":
            instances.extend(_record(record, path, number))
            continue
        inst = {"id": rid, "fields": {f: record[f] for f in task.fields}}
        if task.shape == "choice":                           # COPA
            inst.update(text_a=record["premise"], question=record["question"],
                        choices=[record["choice1"], record["choice2"]])
            if record["question"] not in ("cause", "effect"):
                raise at(path, number, f"expected question 'cause' or 'effect', got {record['question']!r}")
            if labelled:
                if record["label"] not in (0, 1):
                    raise at(path, number, f"expected label 0 or 1, got {record['label']!r}")
                inst["label"] = record["label"]
        elif task.shape == "wsc":
            target = record["target"]
            _require(target, ("span1_index", "span1_text", "span2_index", "span2_text"), path, number)
            inst.update(text_a=record["text"],
                        text_b=f'{target["span2_text"]} refers to {target["span1_text"]}')
        elif task.shape == "wic":
            _check_wic_offsets(record, path, number)
            inst.update(text_a=record["sentence1"], text_b=record["sentence2"])
        else:                                                # pair
            inst.update(text_a=record[task.fields[0]], text_b=record[task.fields[1]])
        if labelled and task.shape != "choice":
            inst["label"] = _label_index(task, record[task.label_field], path, number)
        if task.name == "AX-g":
            _require(record, ["pair_id"], path, number)
            inst["pair_id"] = record["pair_id"]
        instances.append(inst)
    return instances


def _check_wic_offsets(record, path, line):
    for k in ("1", "2"):
        sentence, start, end = record["sentence" + k], record["start" + k], record["end" + k]
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(sentence)):
            raise at(path, line, f"expected 0 <= start{k} < end{k} <= len(sentence{k}), "
                                 f"got {start}, {end} for a sentence of {len(sentence)} characters")


def _multirc(task: Task, record, path, line) -> List[dict]:
    """MultiRC: passage -> questions -> answers; one binary instance per answer option."""
    passage = record["passage"]
    if not isinstance(passage, dict) or "text" not in passage or "questions" not in passage:
        raise at(path, line, "expected passage to be an object with 'text' and 'questions'")
    out = []
    for question in passage["questions"]:
        _require(question, ("question", "answers", "idx"), path, line)
        group = f'{record.get("idx")}-{question["idx"]}'
        for answer in question["answers"]:
            _require(answer, ("text", "idx"), path, line)
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


def _record(record, path, line) -> List[dict]:
    """ReCoRD: passage with entity spans (inclusive ends) -> queries with @placeholder."""
    passage = record["passage"]
    if not isinstance(passage, dict) or "text" not in passage or "entities" not in passage:
        raise at(path, line, "expected passage to be an object with 'text' and 'entities'")
    text = passage["text"]
    candidates = []
    for entity in passage["entities"]:
        _require(entity, ("start", "end"), path, line)
        if not 0 <= entity["start"] <= entity["end"] < len(text):
            raise at(path, line, f"entity span {entity['start']}..{entity['end']} lies outside the passage")
        name = text[entity["start"]:entity["end"] + 1]
        if name not in candidates:
            candidates.append(name)
    out = []
    for qa in record["qas"]:
        _require(qa, ("query", "idx"), path, line)
        if "@placeholder" not in qa["query"]:
            raise at(path, line, "expected the query to contain '@placeholder'")
        inst = {"id": qa["idx"], "text_a": text, "query": qa["query"], "candidates": candidates,
                "fields": {"passage_idx": record.get("idx")}}
        if "answers" in qa:
            inst["answers"] = sorted({a["text"] for a in qa["answers"]})
        out.append(inst)
    return out


# --------------------------------------------------------------------------------------------
# RACE
# --------------------------------------------------------------------------------------------

_LETTERS = "ABCD"


def load_race(task: Task, folder: Path, split: str) -> List[dict]:
    """RACE/<split>/<middle|high>/*.txt, each one JSON passage with parallel question lists."""
    folder = Path(folder)
    instances = []
    for path in sorted(folder.glob("*.txt"), key=lambda p: (len(p.stem), p.stem)):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise at(path, err.lineno, f"invalid JSON ({err.msg}); expected one RACE passage object") from None
        _require(record, ("article", "questions", "options"), path, None)
        questions, options = record["questions"], record["options"]
        answers = record.get("answers")
        if len(options) != len(questions) or (answers is not None and len(answers) != len(questions)):
            raise at(path, None, "expected as many options lists and answers as questions")
        for q, (question, opts) in enumerate(zip(questions, options)):
            if len(opts) != 4:
                raise at(path, None, f"question {q}: expected 4 options, got {len(opts)}")
            inst = {"id": f'{record.get("id", path.name)}-{q}', "text_a": record["article"],
                    "question": question, "choices": list(opts),
                    "fields": {"file": path.name, "question_index": q}}
            if answers is not None:
                if answers[q] not in _LETTERS:
                    raise at(path, None, f"question {q}: expected an answer in A-D, got {answers[q]!r}")
                inst["label"] = _LETTERS.index(answers[q])
            instances.append(inst)
    return instances


# --------------------------------------------------------------------------------------------
# entry points
# --------------------------------------------------------------------------------------------

def split_path(task: Task, directory, split: str) -> Path:
    directory = Path(directory)
    if task.format == "race":
        return directory / task.splits[split] / task.folder
    return directory / task.splits[split]


def load_split(task: Task, directory, split: str) -> List[dict]:
    """Load one split from the task's official folder (e.g. glue_data/SST-2, combined/BoolQ, RACE)."""
    if split not in task.splits:
        raise BortError(f"{task.name} has no split {split!r}; expected one of {list(task.splits)}")
    path = split_path(task, directory, split)
    if not path.exists():
        raise at(path, None, f"missing {task.name} {split} {'folder' if task.format == 'race' else 'file'}")
    loader = {"tsv": load_tsv, "jsonl": load_jsonl, "race": load_race}[task.format]
    instances = loader(task, path, split)
    if not instances:
        raise at(path, None, f"no {task.name} examples found")
    return instances


def present_splits(task: Task, directory) -> List[str]:
    return [s for s in task.splits if split_path(task, directory, s).exists()]


def summarize(task: Task, instances: Sequence[dict]) -> dict:
    """Example count and label distribution of one split (what `check` prints)."""
    summary = {"examples": len(instances)}
    labelled = [i for i in instances if "label" in i or "answers" in i]
    summary["labelled"] = len(labelled)
    if not labelled:
        return summary
    if task.shape == "regression":
        scores = [i["label"] for i in labelled]
        summary["label_mean"] = round(sum(scores) / len(scores), 6)
        summary["label_min"], summary["label_max"] = min(scores), max(scores)
    elif task.shape == "record":
        summary["mean_candidates"] = round(sum(len(i["candidates"]) for i in labelled) / len(labelled), 6)
    elif task.labels is not None:
        counts = Counter(i["label"] for i in labelled)
        summary["label_counts"] = {str(task.labels[k]): counts.get(k, 0) for k in range(len(task.labels))}
    else:
        counts = Counter(i["label"] for i in labelled)
        summary["label_counts"] = {str(k): counts[k] for k in sorted(counts)}
    return summary


def check(task: Task, directory) -> Dict[str, dict]:
    directory = Path(directory)
    if not directory.is_dir():
        raise at(directory, None, f"expected the official {task.name} folder")
    splits = present_splits(task, directory)
    if not splits:
        wanted = [str(split_path(task, directory, s)) for s in task.splits]
        raise at(directory, None, f"no {task.name} split found; expected any of {wanted}")
    return {s: summarize(task, load_split(task, directory, s)) for s in splits}


def describe(task: Task) -> dict:
    entry = asdict(task)
    entry["labels"] = list(task.labels) if task.labels is not None else None
    return entry


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bort.tasks", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_list = sub.add_parser("list", help="print the 23 tasks")
    p_list.add_argument("--json", action="store_true")
    p_check = sub.add_parser("check", help="load every split present in a task's official folder")
    p_check.add_argument("task")
    p_check.add_argument("dir")
    p_check.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    setup_logging()
    if args.command == "list":
        if args.json:
            print(json.dumps([describe(t) for t in TASKS.values()], indent=1))
        else:
            for t in TASKS.values():
                print(f"{t.name:14s} {t.suite:9s} {t.shape:10s} {','.join(t.metrics):22s}"
                      f"{' scored by ' + t.scored_by if t.scored_by else ''}")
        return 0
    task = get_task(args.task)
    result = check(task, args.dir)
    if args.json:
        print(json.dumps({"task": task.name, "splits": result}, indent=1, sort_keys=True))
    else:
        for split, summary in result.items():
            print(f"{task.name} {split}: " + ", ".join(f"{k}={v}" for k, v in summary.items()))
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
