"""The 23 tasks of GLUE, SuperGLUE and RACE as data, and loaders for their official files.

Every task is one declarative `Task` entry: where its files live and in which format
(bort.formats), the official columns of each TSV split, its input fields, label set and the
metrics its leaderboard reports, whose fine-tuned model scores it (the diagnostic sets, MNLI's
mismatched dev set), plus its *shape* (bort.shapes), which owns everything that differs between
input structures. Loaders, models, Agora, the floor and the submission writer are picked from the
entry, so task 24 is one entry -- and a new input structure one shape class.

Loaders read the *official* layouts and their quirks: MRPC's byte-order mark, CoLA's headerless
train/dev TSV, MNLI's many columns and matched/mismatched dev files, QQP's few malformed rows
(skipped with a warning and a count, as GluonNLP's own loader does), STS-B's float scores,
unlabelled GLUE test files, GLUE's diagnostic as the unlabelled diagnostic.tsv or AX.tsv or the
labelled diagnostic-full.tsv (`Variant`), SuperGLUE's per-task JSONL schemas (MultiRC and ReCoRD
nested), and RACE's one JSON file per passage. Every example of a train or dev split must carry
its gold label -- a missing one is an error naming the file and line, never a silent drop. A label
on a test file is optional: real GLUE test files have none; the embedded data carries one so that
scores can be measured on data that Agora never saw (README, "The embedded default").

CLI: `python -m bort.tasks list [--json]`, `python -m bort.tasks check TASK DIR [--json]`.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from bort import params
from bort import shapes as S
from bort.errors import BortError, at, cli_main, setup_logging
from bort.formats import FORMATS


@dataclass(frozen=True)
class Suite:
    name: str
    label: str                      # as the leaderboards print it
    folder: str                     # the official download's folder below a data root


SUITES = {s.name: s for s in [Suite("glue", "GLUE", "glue_data"), Suite("superglue", "SuperGLUE", "combined"),
                              Suite("race", "RACE", "RACE")]}


@dataclass(frozen=True)
class Variant:
    """Another official file a split may come as (GLUE's unlabelled diagnostic as diagnostic.tsv
    or AX.tsv): its name, its columns, and which of them carry the entry's field names."""
    file: str
    columns: Tuple[str, ...] = ()
    renames: Dict[str, str] = field(default_factory=dict)   # the file's column -> the entry's field


@dataclass(frozen=True)
class Task:
    """One task of the benchmark, declaratively (see the module docstring)."""
    name: str
    suite: str                      # key of SUITES
    folder: str                     # below the suite folder ("": the suite folder itself, RACE)
    format: str                     # key of bort.formats.FORMATS
    shape: object                   # a bort.shapes shape
    splits: Dict[str, str]          # split -> file (RACE: folder) below the task folder
    fields: Tuple[str, ...]         # input fields of the official record
    label_field: Optional[str]
    labels: Optional[Tuple] = None  # None for regression and multiple choice
    metrics: Tuple[str, ...] = ("acc",)
    scored_by: Optional[str] = None  # the task whose fine-tuned model scores this one
    columns: Dict[str, Tuple[str, ...]] = field(default_factory=dict)  # TSV: official columns per split
    headerless: Tuple[str, ...] = ()  # TSV splits without a header row (CoLA train/dev)
    skip_malformed: bool = False    # QQP: rows with a wrong field count are skipped, not fatal
    id_field: Optional[str] = None
    copy_fields: Tuple[str, ...] = ()  # record fields kept on each instance (AX-g's pair_id)
    long_inputs: bool = False       # passages: encoded up to finetune's max_len_passage
    display_name: Optional[str] = None  # the leaderboards' spelling, when the key differs
    variants: Dict[str, Tuple[Variant, ...]] = field(default_factory=dict)  # split -> other files, in order
    decision_threshold: bool = False  # two classes: predict 1 above a P(1) threshold fitted on Agora's dev

    @property
    def trains(self) -> bool:
        """Has its own fine-tuning run (otherwise `scored_by`'s model scores it)."""
        return self.scored_by is None

    @property
    def is_diagnostic(self) -> bool:
        """No training data of its own (AX, AX-b, AX-g): left out of the suite scores."""
        return "train" not in self.splits

    @property
    def label(self) -> str:
        return self.display_name or self.name

    def files(self, split: str) -> Tuple[str, ...]:
        """The names a split's official file may have, preferred first."""
        return (self.splits[split],) + tuple(v.file for v in self.variants.get(split, ()))

    def variant(self, split: str, path) -> Variant:
        """How to read `path` as `split`: the variant of that name, or the entry's own file."""
        name = Path(path).name
        return next((v for v in self.variants.get(split, ()) if v.file == name),
                    Variant(self.splits[split], self.columns.get(split, ())))


_NLI3 = ("contradiction", "entailment", "neutral")
_TWO_WAY = ("entailment", "not_entailment")
_BOOL = (False, True)
_GLUE = {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"}
_SG = {"train": "train.jsonl", "dev": "val.jsonl", "test": "test.jsonl"}


def _race(level: str) -> Dict[str, str]:
    return {split: f"{split}/{level}" for split in ("train", "dev", "test")}


def _columns(labelled: Tuple[str, ...], test: Tuple[str, ...]) -> Dict[str, Tuple[str, ...]]:
    return {"train": labelled, "dev": labelled, "test": test}


_PAIR_COLUMNS = _columns(("index", "sentence1", "sentence2", "label"), ("index", "sentence1", "sentence2"))
_MNLI = ("index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
         "sentence1_parse", "sentence2_parse", "sentence1", "sentence2")
_MNLI_COLUMNS = {"train": _MNLI + ("label1", "gold_label"),
                 "dev": _MNLI + tuple(f"label{k}" for k in range(1, 6)) + ("gold_label",), "test": _MNLI}
_STSB = ("index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2")
_COLA = ("source", "label", "original_label", "sentence")
_MRPC = ("#1 ID", "#2 ID", "#1 String", "#2 String")

TASKS: Dict[str, Task] = {t.name: t for t in [
    # ---- GLUE (11) ----
    Task("CoLA", "glue", "CoLA", "tsv", S.Single(), _GLUE, ("sentence",), "label", ("0", "1"), ("mcc",),
         columns={"train": _COLA, "dev": _COLA, "test": ("index", "sentence")}, headerless=("train", "dev"),
         id_field="index"),
    Task("SST-2", "glue", "SST-2", "tsv", S.Single(), _GLUE, ("sentence",), "label", ("0", "1"), ("acc",),
         columns=_columns(("sentence", "label"), ("index", "sentence")), id_field="index"),
    Task("MRPC", "glue", "MRPC", "tsv", S.Pair(), _GLUE, ("#1 String", "#2 String"), "Quality", ("0", "1"),
         ("f1", "acc"), columns=_columns(("Quality",) + _MRPC, ("index",) + _MRPC), id_field="index"),
    Task("STS-B", "glue", "STS-B", "tsv", S.Regression(0.0, 5.0), _GLUE, ("sentence1", "sentence2"), "score",
         None, ("pearson", "spearman"), columns=_columns(_STSB + ("score",), _STSB), id_field="index"),
    Task("QQP", "glue", "QQP", "tsv", S.Pair(), _GLUE, ("question1", "question2"), "is_duplicate", ("0", "1"),
         ("f1", "acc"), columns=_columns(("id", "qid1", "qid2", "question1", "question2", "is_duplicate"),
                                         ("id", "question1", "question2")),
         skip_malformed=True, id_field="id"),
    Task("MNLI-m", "glue", "MNLI", "tsv", S.Pair(),
         {"train": "train.tsv", "dev": "dev_matched.tsv", "test": "test_matched.tsv"},
         ("sentence1", "sentence2"), "gold_label", _NLI3, ("acc",), columns=_MNLI_COLUMNS, id_field="index"),
    # MNLI-mm is read with MNLI's training file, so the MNLI-m model scores it
    Task("MNLI-mm", "glue", "MNLI", "tsv", S.Pair(),
         {"train": "train.tsv", "dev": "dev_mismatched.tsv", "test": "test_mismatched.tsv"},
         ("sentence1", "sentence2"), "gold_label", _NLI3, ("acc",), scored_by="MNLI-m", columns=_MNLI_COLUMNS,
         id_field="index"),
    Task("QNLI", "glue", "QNLI", "tsv", S.Pair(), _GLUE, ("question", "sentence"), "label", _TWO_WAY, ("acc",),
         columns=_columns(("index", "question", "sentence", "label"), ("index", "question", "sentence")),
         id_field="index"),
    Task("RTE", "glue", "RTE", "tsv", S.Pair(), _GLUE, ("sentence1", "sentence2"), "label", _TWO_WAY, ("acc",),
         columns=_PAIR_COLUMNS, id_field="index"),
    Task("WNLI", "glue", "WNLI", "tsv", S.Pair(), _GLUE, ("sentence1", "sentence2"), "label", ("0", "1"),
         ("acc",), columns=_PAIR_COLUMNS, id_field="index"),
    # AX: diagnostic-full.tsv carries the labels (scored); GLUE's download has the unlabelled
    # diagnostic.tsv, the leaderboard's package AX.tsv (submission only, no score)
    Task("AX", "glue", "diagnostic", "tsv", S.Pair(), {"test": "diagnostic-full.tsv"}, ("Premise", "Hypothesis"),
         "Label", _NLI3, ("mcc",), scored_by="MNLI-m",
         columns={"test": ("Lexical Semantics", "Predicate-Argument Structure", "Logic", "Knowledge", "Domain",
                           "Premise", "Hypothesis", "Label")},
         variants={"test": tuple(Variant(f, ("index", "sentence1", "sentence2"),
                                         {"sentence1": "Premise", "sentence2": "Hypothesis"})
                                 for f in ("diagnostic.tsv", "AX.tsv"))}),
    # ---- SuperGLUE (10) ----
    Task("BoolQ", "superglue", "BoolQ", "jsonl", S.Pair(), _SG, ("passage", "question"), "label", _BOOL,
         ("acc",), id_field="idx", long_inputs=True),
    Task("CB", "superglue", "CB", "jsonl", S.Pair(), _SG, ("premise", "hypothesis"), "label", _NLI3,
         ("macro_f1", "acc"), id_field="idx"),
    Task("COPA", "superglue", "COPA", "jsonl", S.Copa(), _SG, ("premise", "question", "choice1", "choice2"),
         "label", None, ("acc",), id_field="idx"),
    Task("MultiRC", "superglue", "MultiRC", "jsonl", S.MultiRC(), _SG, ("passage",), "label", (0, 1),
         ("f1a", "em"), id_field="idx", long_inputs=True, decision_threshold=True),
    Task("ReCoRD", "superglue", "ReCoRD", "jsonl", S.Record(), _SG, ("passage", "qas"), "answers", None,
         ("record_f1", "record_em"), id_field="idx", long_inputs=True),
    Task("SuperGLUE-RTE", "superglue", "RTE", "jsonl", S.Pair(), _SG, ("premise", "hypothesis"), "label",
         _TWO_WAY, ("acc",), id_field="idx", display_name="RTE"),
    Task("WiC", "superglue", "WiC", "jsonl", S.WiC(), _SG,
         ("word", "sentence1", "sentence2", "start1", "end1", "start2", "end2"), "label", _BOOL, ("acc",),
         id_field="idx"),
    Task("WSC", "superglue", "WSC", "jsonl", S.WSC(), _SG, ("text", "target"), "label", _BOOL, ("acc",),
         id_field="idx"),
    Task("AX-b", "superglue", "AX-b", "jsonl", S.Pair(), {"test": "AX-b.jsonl"}, ("sentence1", "sentence2"),
         "label", _TWO_WAY, ("mcc",), scored_by="SuperGLUE-RTE", id_field="idx"),
    Task("AX-g", "superglue", "AX-g", "jsonl", S.Pair(), {"test": "AX-g.jsonl"}, ("premise", "hypothesis"),
         "label", _TWO_WAY, ("gender_parity", "acc"), scored_by="SuperGLUE-RTE", id_field="idx",
         copy_fields=("pair_id",)),
    # ---- RACE (2) ----
    Task("RACE-middle", "race", "", "race", S.Race(), _race("middle"), ("article", "questions", "options"),
         "answers", None, ("acc",), id_field="id", long_inputs=True),
    Task("RACE-high", "race", "", "race", S.Race(), _race("high"), ("article", "questions", "options"),
         "answers", None, ("acc",), id_field="id", long_inputs=True),
]}


def get_task(name: str) -> Task:
    """The registry entry, or an error that lists every valid name."""
    try:
        return TASKS[name]
    except KeyError:
        raise BortError(f"unknown task {name!r}; expected one of: {', '.join(TASKS)}") from None


def suite_tasks(suite: str, names: Sequence[str] = None) -> List[Task]:
    """The tasks of one suite in registry order (only `names`, when given)."""
    return [t for t in TASKS.values() if t.suite == suite and (names is None or t.name in names)]


def scored_with(parents: Sequence[str]) -> List[Task]:
    """The tasks without a training run of their own whose scoring model is one of `parents`."""
    return [t for t in TASKS.values() if t.scored_by in parents]


def trained(names: Sequence[str], where: str = "params.yaml: key tasks") -> List[Task]:
    """The entries of a list of tasks to fine-tune (params.yaml `tasks`, or a stage's argument
    named by `where`), each checked."""
    out = []
    for name in names:
        task = TASKS.get(name)
        if task is None or not task.trains:
            expected = [t.name for t in TASKS.values() if t.trains]
            why = "unknown task" if task is None else f"it is scored by {task.scored_by}'s model, not trained"
            raise BortError(f"{where}: {name!r}: {why}; expected one of {expected}")
        out.append(task)
    return out


def selected(path: Path = params.PARAMS_FILE) -> List[Task]:
    """The tasks to fine-tune: params.yaml `tasks`, checked (the list dvc.yaml's foreach reads)."""
    return trained(params.value("tasks", List[str], path))


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
    return Path(root) / SUITES[task.suite].folder / task.folder


def split_path(task: Task, directory, split: str) -> Path:
    """The split's file (RACE: folder) in `directory`: the first of its official names present
    (`Task.files`), else the preferred one."""
    paths = [Path(directory) / name for name in task.files(split)]
    return next((p for p in paths if p.exists()), paths[0])


def load_split(task: Task, directory, split: str) -> List[dict]:
    """One split from the task's official folder (e.g. glue_data/SST-2, combined/BoolQ, RACE)."""
    if split not in task.splits:
        raise BortError(f"{task.name} has no split {split!r}; expected one of {list(task.splits)}")
    path = split_path(task, directory, split)
    fmt = FORMATS[task.format]
    if not path.exists():
        others = f" (or {', '.join(task.files(split)[1:])})" if len(task.files(split)) > 1 else ""
        raise at(path, None, f"missing {task.name} {split} {fmt.kind}{others}")
    instances: List[dict] = []
    for where, line, record in fmt.records(task, path, split):
        S.require(record, task.fields, where, line)
        if split != "test" and task.shape.label_in_record:
            S.require(record, [task.label_field], where, line)
        rid = record.get(task.id_field, fmt.default_id(len(instances)))
        made = task.shape.instances(task, record, rid, where, line)
        if split != "test" and not all(S.has_gold(i) for i in made):
            raise at(where, line, f"no gold label (field {task.label_field!r}) in the labelled {split} split; "
                                  "expected every example labelled")
        if task.copy_fields:
            S.require(record, task.copy_fields, where, line)
            for inst in made:
                inst.update({f: record[f] for f in task.copy_fields})
        instances.extend(made)
    if not instances:
        raise at(path, None, f"no {task.name} examples found")
    return instances


def write_split(task: Task, root, split: str, records: Sequence) -> None:
    """Official records written as the task's split below a data root (the loaders' inverse)."""
    FORMATS[task.format].write_split(task, split_path(task, task_dir(root, task), split), split, records)


def present_splits(task: Task, directory) -> List[str]:
    return [s for s in task.splits if split_path(task, directory, s).exists()]


def summarize(task: Task, instances: Sequence[dict]) -> dict:
    """Example count and label distribution of one split (what `check` prints)."""
    labelled = [i for i in instances if S.has_gold(i)]
    summary = {"examples": len(instances), "labelled": len(labelled)}
    if labelled:
        summary.update(task.shape.summary(task, labelled))
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
    entry = {f.name: getattr(task, f.name) for f in dataclasses.fields(task)}
    entry.update(shape=task.shape.name, variants={s: [dataclasses.asdict(v) for v in vs] for s, vs in task.variants.items()}, labels=list(task.labels) if task.labels is not None else None)
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
                print(f"{t.name:14s} {t.suite:9s} {t.shape.name:10s} {','.join(t.metrics):22s}"
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
