"""Leaderboard zips: one per suite (GLUE, SuperGLUE) and compared model, ready to upload.

Each fine-tuning run writes its test predictions in the leaderboard's per-task layout
(bort.submission, <models>/<model>/<task>/seed-<s>/submission/; the sets scored by a parent's
model under <diagnostics>/<model>/<set>/seed-<s>/submission/). A leaderboard takes one zip with
every task's file, so this module gathers one run per task into `<suite>-<model>.zip`, after
checking each file against the official format and the test set it answers. RACE has no
leaderboard server: it gets no zip.

**What is submitted**: the run of the *first seed of params.yaml `finetune.seeds`*, for every task
and model. The rule is fixed before any score exists and never reads a held-out score, so the
submission cannot be picked for luck on our own held-out rows (choosing the best seed would be).

**What the leaderboards take** -- the leaderboards' own pages cannot be read from here, so the
format is that of public writers of accepted submissions, cited here by repository and path:
  - file names: GLUE `CoLA SST-2 MRPC STS-B QQP MNLI-m MNLI-mm QNLI RTE WNLI AX` + `.tsv`, SuperGLUE
    `BoolQ CB COPA MultiRC ReCoRD RTE WiC WSC AX-b AX-g` + `.jsonl` -- nyu-mll/jiant
    `jiant/scripts/benchmarks/benchmarks.py` (BENCHMARK_SUBMISSION_FILENAMES) and v1
    `jiant/evaluate.py` (GLUE_NAME_MAP / SUPERGLUE_NAME_MAP, "exact file names per task required by
    the ... evaluation server").
  - all files, at the top level of the zip: HazyResearch/metal `metal/mmtl/glue/eval_model.py` (1f5b6ef)
    (`zipdir` stores each file under its base name; fewer than 11 GLUE files: "The submission zip
    will be malformed."); jiant's formatter writes SuperGLUE's ten files into one flat folder.
  - GLUE rows: header `index<TAB>prediction`, one row per test row, the label as the task spells
    it (0/1 for CoLA, SST-2, MRPC, QQP, WNLI; entailment/neutral/contradiction for MNLI and AX;
    entailment/not_entailment for QNLI and RTE; STS-B a score in [0, 5]) -- metal `save_tsv`,
    jiant v1 `_write_glue_preds`.
  - SuperGLUE rows: one `{"idx": ..., "label": ...}` object per line: "true"/"false" for BoolQ and
    WiC, "True"/"False" for WSC (bort.shapes.WSC says where from), entailment/neutral/contradiction
    for CB, entailment/not_entailment for RTE, AX-b and AX-g, 0/1 (integers) for COPA -- jiant v1
    `jiant/evaluate.py` (`_write_*_preds`).
  - MultiRC nests the 0/1 answer labels under passage and question: `{"idx": p, "passage":
    {"questions": [{"idx": q, "answers": [{"idx": a, "label": 0|1}]}]}}` -- jiant v1
    `_write_multirc_preds`; deeppavlov/DeepPavlov `deeppavlov/utils/glue_eval/evaluate_glue_superglue.py`.
  - ReCoRD: `{"idx": <query idx>, "label": <entity text>}`, the text being the passage's characters
    `start..end` (inclusive end) of the chosen entity -- jiant v1 `_write_record_preds`, jiant
    `jiant/tasks/lib/record.py` (`passage_text[start : end + 1]`).

**AX's rows** are indexed by position: diagnostic-full.tsv (labelled, scored) has no index column,
and the loader numbers its rows 0, 1, ... The leaderboard's AX.tsv (GLUE's download saves it as
diagnostic/diagnostic.tsv) has an `index` column. The two orders agree as far as public sources
show: the benchmark's own toolkit submits AX from diagnostic-full.tsv by row position (nyu-mll/jiant
v1: `jiant/tasks/tasks.py` GLUEDiagnosticTask reads diagnostic-full.tsv for its test split,
`jiant/utils/data_loaders.py` `load_diagnostic_tsv` numbers the rows `rows.index`, and
`jiant/evaluate.py` writes them as AX.tsv),
and the official diagnostic.tsv (1,104 rows, sha256 0e13510b..., tests/fixtures/official/SOURCES.md)
has index = row position on every row. Where an unlabelled copy lies beside diagnostic-full.tsv
(the embedded data writes both), `check_ax_order` checks it row by row; where none does, it says so
in one log line.

**Byte-identical zips**: entries sorted by name, each stamped 1980-01-01 00:00:00, mode 0644,
Unix, deflated at level 9; the manifest is sorted JSON. (Another zlib may deflate differently.)
"""
from __future__ import annotations

import json
import logging
import os
import zipfile
from collections import Counter
from pathlib import Path
from typing import Dict, List, Sequence

from bort import tasks
from bort.errors import BortError, at
from bort.finetune import seed_dir
from bort.formats import FORMATS
from bort.submission import file_name

log = logging.getLogger(__name__)

#: the suites with a leaderboard server (RACE has none)
SUITES = ("glue", "superglue")
_BINARY = ("0", "1")
_NLI3 = ("contradiction", "entailment", "neutral")
_TWO_WAY = ("entailment", "not_entailment")
#: file -> the label values the leaderboard takes, with their JSON types ("score": STS-B's float in
#: [0, 5]; "entity": one of the query's entity texts; MultiRC: each answer's label)
SPELLINGS = {
    "CoLA.tsv": _BINARY, "SST-2.tsv": _BINARY, "MRPC.tsv": _BINARY, "QQP.tsv": _BINARY, "WNLI.tsv": _BINARY,
    "STS-B.tsv": "score", "MNLI-m.tsv": _NLI3, "MNLI-mm.tsv": _NLI3, "AX.tsv": _NLI3,
    "QNLI.tsv": _TWO_WAY, "RTE.tsv": _TWO_WAY,
    "BoolQ.jsonl": ("false", "true"), "WiC.jsonl": ("false", "true"), "WSC.jsonl": ("False", "True"),
    "CB.jsonl": _NLI3, "RTE.jsonl": _TWO_WAY, "AX-b.jsonl": _TWO_WAY, "AX-g.jsonl": _TWO_WAY,
    "COPA.jsonl": (0, 1), "MultiRC.jsonl": (0, 1), "ReCoRD.jsonl": "entity",
}
GLUE_HEADER = "index\tprediction"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
MANIFEST = "manifest.json"
SEED_RULE = "the first seed of params.yaml finetune.seeds"


def zip_name(suite: str, model: str) -> str:
    return f"{suite}-{model}.zip"


def missing_tasks(suite: str, selected: Sequence[str]) -> List[str]:
    """The suite's trained tasks that params.yaml `tasks` lacks (a diagnostic set comes with its
    parent: AX and MNLI-mm with MNLI-m, AX-b and AX-g with SuperGLUE-RTE)."""
    return [t.name for t in tasks.suite_tasks(suite) if t.trains and t.name not in selected]


def source(task: tasks.Task, model: str, seed: int, models: Path, diagnostics: Path) -> Path:
    """Where the run of `model` with `seed` left the task's leaderboard file."""
    root = Path(models if task.trains else diagnostics)
    return root / model / task.name / seed_dir(seed) / "submission" / file_name(task)


# --------------------------------------------------------------------------------------------
# the official format, checked against the test set each file answers
# --------------------------------------------------------------------------------------------

def _label_ok(value, allowed) -> bool:
    """`value` is one of `allowed` with the same JSON type (True is not 1, "0" is not 0)."""
    return any(type(value) is type(a) and value == a for a in allowed)


def _label(path, line, value, allowed, what="label") -> None:
    if not _label_ok(value, allowed):
        raise at(path, line, f"{what} {json.dumps(value)}; the leaderboard takes one of "
                             f"{', '.join(json.dumps(a) for a in allowed)}")


def _same_ids(path, seen: list, expected: list, what: str) -> None:
    """Every test row answered exactly once, nothing else."""
    if Counter(seen) != Counter(expected):
        extra = sorted((Counter(seen) - Counter(expected)).elements(), key=str)[:3]
        lost = sorted((Counter(expected) - Counter(seen)).elements(), key=str)[:3]
        raise at(path, None, f"{len(seen)} {what} for a test set of {len(expected)}; "
                             f"expected each test {what[:-1]} once (unexpected or repeated: {extra}, "
                             f"missing: {lost}) -- re-run `dvc repro`")


def check_glue(name: str, path, text: str, test: Sequence[dict]) -> None:
    """A GLUE .tsv: the header, then one `index<TAB>prediction` row per test row."""
    rows = text.splitlines()
    if not rows or rows[0] != GLUE_HEADER:
        raise at(path, 1, f"expected the header {GLUE_HEADER!r}, got {rows[0] if rows else ''!r}")
    seen = []
    for line, row in enumerate(rows[1:], start=2):
        fields = row.split("\t")
        if len(fields) != 2:
            raise at(path, line, f"expected 2 tab-separated fields (index, prediction), got {len(fields)}")
        index, value = fields
        if SPELLINGS[name] == "score":
            try:
                score = float(value)
            except ValueError:
                raise at(path, line, f"prediction {value!r}; expected a similarity score") from None
            if not 0.0 <= score <= 5.0:
                raise at(path, line, f"prediction {value}; expected a score in [0, 5]")
        else:
            _label(path, line, value, SPELLINGS[name], "prediction")
        seen.append(index)
    _same_ids(path, seen, [str(i["id"]) for i in test], "rows")


def _keys(path, line, obj, keys, what="an object") -> dict:
    """`obj`, if it is a JSON object with exactly `keys` and an integer or string "idx"."""
    if not isinstance(obj, dict) or set(obj) != set(keys):
        got = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise at(path, line, f"expected {what} with keys {sorted(keys)}, got {got}")
    if "idx" in obj and type(obj["idx"]) not in (int, str):
        raise at(path, line, f"idx {json.dumps(obj['idx'])}; expected the test set's idx")
    return obj


def _object(path, line, raw: str, keys) -> dict:
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as err:
        raise at(path, line, f"invalid JSON ({err.msg}); expected one object per line") from None
    return _keys(path, line, obj, keys)


def check_superglue(name: str, path, text: str, test: Sequence[dict]) -> None:
    """A SuperGLUE .jsonl: one {"idx", "label"} object per test row; MultiRC one nested object per
    passage; ReCoRD's label one of the query's entity texts."""
    allowed = SPELLINGS[name]
    lines = [(k, raw) for k, raw in enumerate(text.splitlines(), start=1) if raw.strip()]
    if name == "MultiRC.jsonl":
        seen, passages, questions_seen = [], [], []
        for line, raw in lines:
            passage = _object(path, line, raw, ("idx", "passage"))
            passages.append(passage["idx"])
            questions = _keys(path, line, passage["passage"], ("questions",), '"passage" as an object')["questions"]
            for question in questions if isinstance(questions, list) else [None]:
                answers = _keys(path, line, question, ("idx", "answers"), "each question")["answers"]
                questions_seen.append((passage["idx"], question["idx"]))
                for answer in answers if isinstance(answers, list) else [None]:
                    answer = _keys(path, line, answer, ("idx", "label"), "each answer")
                    _label(path, line, answer["label"], allowed, "answer label")
                    seen.append((passage["idx"], question["idx"], answer["idx"]))
        expected = [tuple(i["fields"][k] for k in ("passage_idx", "question_idx", "answer_idx")) for i in test]
        _same_ids(path, seen, expected, "answers")
        _same_ids(path, questions_seen, list(dict.fromkeys(t[:2] for t in expected)), "questions")
        _same_ids(path, passages, list(dict.fromkeys(t[0] for t in expected)), "passages")
        return
    entities = {i["id"]: i["candidates"] for i in test} if allowed == "entity" else {}
    seen = []
    for line, raw in lines:
        row = _object(path, line, raw, ("idx", "label"))
        if allowed == "entity":
            _label(path, line, row["label"], tuple(entities.get(row["idx"], ())), "entity")
        else:
            _label(path, line, row["label"], allowed)
        seen.append(row["idx"])
    _same_ids(path, seen, [i["id"] for i in test], "rows")


CHECKS = {"glue": check_glue, "superglue": check_superglue}


def check_file(task: tasks.Task, path: Path, test: Sequence[dict]) -> bytes:
    """The file's bytes, after checking them against the official format and the test set."""
    if not path.is_file():
        raise at(path, None, f"missing; expected the {task.name} leaderboard file of this run "
                             "(run `dvc repro`)")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise at(path, None, "not UTF-8 text") from None
    CHECKS[task.suite](file_name(task), path, text, test)
    return data


def _pair(record: dict) -> tuple:
    return tuple(" ".join(record[k].split()) for k in ("Premise", "Hypothesis"))


def check_ax_order(folder) -> str:
    """AX is answered by row position: an unlabelled copy (diagnostic.tsv / AX.tsv) in `folder`
    must number its rows 0, 1, ... and, beside diagnostic-full.tsv, hold the same pairs in the same
    order (spacing aside). Returns what was checked; raises where the order differs."""
    ax = tasks.get_task("AX")
    folder = Path(folder)
    full = folder / ax.splits["test"]
    copies = [folder / v.file for v in ax.variants["test"] if (folder / v.file).is_file()]
    fmt = FORMATS[ax.format]
    pairs = [_pair(r) for _, _, r in fmt.records(ax, full, "test")] if full.is_file() else None
    for copy in copies:
        k = -1
        for k, (_, line, record) in enumerate(fmt.records(ax, copy, "test")):
            if record.get("index") != str(k):
                raise at(copy, line, f"index {record.get('index')!r}; expected {k}: AX predictions are "
                                     "indexed by row position")
            if pairs is not None and (k >= len(pairs) or _pair(record) != pairs[k]):
                raise at(copy, line, f"row {k} differs from {full.name} row {k}: AX predictions are "
                                     f"indexed by row position in {full.name}, so the orders must agree")
        if pairs is not None and k + 1 != len(pairs):
            raise at(copy, None, f"{k + 1} rows; {full.name} has {len(pairs)}: the AX orders must agree")
    if pairs is None:
        return f"read from {copies[0].name if copies else '?'}: its index column is the row position"
    if copies:
        return f"{full.name} row order checked against {', '.join(c.name for c in copies)}"
    log.info("AX: %s is read by row position; no diagnostic.tsv or AX.tsv beside it to check the "
             "order against (the public files agree: see bort.leaderboard)", full)
    return f"{full.name} read by row position; no unlabelled copy beside it to check the order against"


# --------------------------------------------------------------------------------------------
# the zips
# --------------------------------------------------------------------------------------------

def write_zip(path: Path, files: Dict[str, bytes]) -> None:
    """A zip of `files` at its top level, byte-identical for equal input (see the module docstring)."""
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w") as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3                    # Unix, so that the mode below is read
            info.external_attr = 0o100644 << 16       # a regular file, rw-r--r--
            archive.writestr(info, files[name], compresslevel=9)
    os.replace(tmp, path)


def build(data, models, diagnostics, out, selected: Sequence[str], seeds: Sequence[int],
          model_names: Sequence[str]) -> dict:
    """Write `<suite>-<model>.zip` into `out` for every suite whose trained tasks `selected` holds
    (one log line per suite that lacks some), with the run of the first of `seeds`, and
    manifest.json (the rule, the zips, their files and sources, the suites left out); returns the
    manifest."""
    if not seeds:
        raise BortError("params.yaml: key finetune.seeds: empty; expected at least one seed")
    seed, out = seeds[0], Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"rule": SEED_RULE, "seed": seed, "zips": {}, "skipped": {}}
    for suite in SUITES:
        label = tasks.SUITES[suite].label
        members = tasks.suite_tasks(suite)
        lacking = missing_tasks(suite, selected)
        if lacking:
            log.info("%s: no zip; params.yaml tasks lacks %s (the leaderboard takes only all %d files)",
                     label, ", ".join(lacking), len(members))
            manifest["skipped"][label] = lacking
            continue
        test = {t.name: tasks.load_split(t, tasks.task_dir(data, t), "test") for t in members}
        if any(t.name == "AX" for t in members):
            manifest["ax_order"] = check_ax_order(tasks.task_dir(data, tasks.get_task("AX")))
        for model in model_names:
            files, listed = {}, {}
            for task in members:
                path = source(task, model, seed, Path(models), Path(diagnostics))
                files[file_name(task)] = check_file(task, path, test[task.name])
                listed[file_name(task)] = {"source": path.as_posix(), "predictions": len(test[task.name])}
            write_zip(out / zip_name(suite, model), files)
            manifest["zips"][zip_name(suite, model)] = {"suite": label, "model": model, "files": listed}
            log.info("%s: %s (%d files, seed %d)", label, zip_name(suite, model), len(files), seed)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def read_zip(path) -> Dict[str, bytes]:
    """A zip's files by name (what a test or a person checks before uploading)."""
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}

