"""The leaderboard zips (bort.leaderboard, stage `submissions`), read back and checked against the
official format as public writers of accepted submissions produce it (sources in bort.leaderboard's
docstring). The expectations below are written out here, not taken from the module, and the test
sets are read from the raw files, not through bort's loaders."""
import json
import logging
import shutil
import zipfile

import pytest

from bort import leaderboard, submission, tasks
from bort.errors import BortError
from bort.finetune import MODELS
from conftest import ROOT, run_module

GLUE = ["AX", "CoLA", "MNLI-m", "MNLI-mm", "MRPC", "QNLI", "QQP", "RTE", "SST-2", "STS-B", "WNLI"]
SUPERGLUE = ["AX-b", "AX-g", "BoolQ", "CB", "COPA", "MultiRC", "RTE", "ReCoRD", "WSC", "WiC"]
NLI3, TWO_WAY = {"entailment", "neutral", "contradiction"}, {"entailment", "not_entailment"}
#: file -> (python type, allowed values) of each prediction, as the leaderboards take them
GLUE_LABELS = {"CoLA": {"0", "1"}, "SST-2": {"0", "1"}, "MRPC": {"0", "1"}, "QQP": {"0", "1"},
               "WNLI": {"0", "1"}, "MNLI-m": NLI3, "MNLI-mm": NLI3, "AX": NLI3, "QNLI": TWO_WAY, "RTE": TWO_WAY}
SUPERGLUE_LABELS = {"BoolQ": (str, {"true", "false"}), "WiC": (str, {"true", "false"}),
                    "WSC": (str, {"True", "False"}), "CB": (str, NLI3), "RTE": (str, TWO_WAY),
                    "AX-b": (str, TWO_WAY), "AX-g": (str, TWO_WAY), "COPA": (int, {0, 1})}
TRAINED = [t.name for t in tasks.TASKS.values() if t.trains]
SEEDS = [3, 1]                         # the first seed is submitted, not the smallest


def _preds(task, test, shift):
    """Some valid prediction per test instance, different for each `shift`."""
    if task.name == "ReCoRD":
        return [i["candidates"][shift % len(i["candidates"])] for i in test]
    if task.name == "STS-B":
        return [float((k + shift) % 6) for k in range(len(test))]
    n = len(task.labels) if task.labels else 2
    return [(k + shift) % n for k in range(len(test))]


@pytest.fixture(scope="module")
def runs(embedded_root, tmp_path_factory):
    """Every model's leaderboard files for every set, for two seeds, as the fine-tuning and
    diagnostics stages lay them out."""
    root = tmp_path_factory.mktemp("runs")
    for task in tasks.TASKS.values():
        if task.suite not in leaderboard.SUITES:
            continue
        test = tasks.load_split(task, tasks.task_dir(embedded_root, task), "test")
        for model in MODELS:
            for shift, seed in enumerate(SEEDS):
                folder = leaderboard.source(task, model, seed, root / "models", root / "diagnostics").parent
                submission.write(task, test, _preds(task, test, shift), folder)
    return root


def _build(embedded_root, runs, out, selected=TRAINED, seeds=SEEDS):
    return leaderboard.build(embedded_root, runs / "models", runs / "diagnostics", out, selected, seeds, MODELS)


def _jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _raw_test(root, suite, name):
    """The raw test records / rows of a set (no bort loader)."""
    if suite == "glue":
        folder = root / "glue_data" / {"MNLI-m": "MNLI", "MNLI-mm": "MNLI", "AX": "diagnostic"}.get(name, name)
        file = {"MNLI-m": "test_matched.tsv", "MNLI-mm": "test_mismatched.tsv",
                "AX": "diagnostic-full.tsv"}.get(name, "test.tsv")
        lines = (folder / file).read_text().splitlines()
        header = lines[0].split("\t")
        return [dict(zip(header, line.split("\t"))) for line in lines[1:] if line]
    file = root / "combined" / name / (f"{name}.jsonl" if name.startswith("AX-") else "test.jsonl")
    return _jsonl(file)


def _check_glue(name, text, raw):
    rows = text.splitlines()
    assert rows[0] == "index\tprediction", name
    assert len(rows) - 1 == len(raw), name                              # one row per test row
    ids = [r.get("index", r.get("id")) for r in raw] if name != "AX" else [str(k) for k in range(len(raw))]
    assert [r.split("\t")[0] for r in rows[1:]] == ids, name
    for row in rows[1:]:
        index, value = row.split("\t")
        if name == "STS-B":
            assert 0.0 <= float(value) <= 5.0
        else:
            assert value in GLUE_LABELS[name], (name, value)


def _check_superglue(name, text, raw):
    lines = [json.loads(line) for line in text.splitlines()]
    if name == "MultiRC":                          # answers nested under passage and question
        got = []
        for obj in lines:
            assert set(obj) == {"idx", "passage"} and set(obj["passage"]) == {"questions"}
            for q in obj["passage"]["questions"]:
                assert set(q) == {"idx", "answers"}
                for a in q["answers"]:
                    assert set(a) == {"idx", "label"} and type(a["label"]) is int and a["label"] in (0, 1)
                    got.append((obj["idx"], q["idx"], a["idx"]))
        want = [(p["idx"], q["idx"], a["idx"]) for p in raw for q in p["passage"]["questions"] for a in q["answers"]]
        assert sorted(got) == sorted(want) and len(lines) == len(raw)
        return
    if name == "ReCoRD":                           # the entity's text, passage[start..end] inclusive
        entities = {qa["idx"]: {p["passage"]["text"][e["start"]:e["end"] + 1] for e in p["passage"]["entities"]}
                    for p in raw for qa in p["qas"]}
        assert sorted(o["idx"] for o in lines) == sorted(entities)
        for obj in lines:
            assert set(obj) == {"idx", "label"} and obj["label"] in entities[obj["idx"]], obj
        return
    kind, allowed = SUPERGLUE_LABELS[name]
    assert [o["idx"] for o in lines] == [r["idx"] for r in raw], name   # one object per test row
    for obj in lines:
        assert set(obj) == {"idx", "label"} and type(obj["label"]) is kind and obj["label"] in allowed, (name, obj)


def test_every_zip_holds_every_file_in_the_official_format(embedded_root, runs, tmp_path):
    manifest = _build(embedded_root, runs, tmp_path / "a")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(
        [f"{s}-{m}.zip" for s in ("glue", "superglue") for m in MODELS] + ["manifest.json"])
    assert manifest["seed"] == SEEDS[0] and manifest["skipped"] == {}
    for suite, names, suffix, check in (("glue", GLUE, ".tsv", _check_glue),
                                        ("superglue", SUPERGLUE, ".jsonl", _check_superglue)):
        for model in MODELS:
            with zipfile.ZipFile(tmp_path / "a" / f"{suite}-{model}.zip") as archive:
                infos = archive.infolist()
                assert [i.filename for i in infos] == sorted(n + suffix for n in names)     # top level, all
                for info in infos:
                    assert info.date_time == (1980, 1, 1, 0, 0, 0) and info.compress_type == zipfile.ZIP_DEFLATED
                    assert info.external_attr >> 16 == 0o100644
                    name = info.filename[:-len(suffix)]
                    check(name, archive.read(info).decode("utf-8"), _raw_test(embedded_root, suite, name))


def test_the_first_seed_is_submitted_and_the_zips_are_byte_identical(embedded_root, runs, tmp_path):
    _build(embedded_root, runs, tmp_path / "a")
    _build(embedded_root, runs, tmp_path / "b")
    for path in (tmp_path / "a").iterdir():
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes(), path.name
    files = leaderboard.read_zip(tmp_path / "a" / "glue-bort.zip")
    cola = tasks.get_task("CoLA")
    first = leaderboard.source(cola, "bort", SEEDS[0], runs / "models", runs / "diagnostics")
    other = leaderboard.source(cola, "bort", SEEDS[1], runs / "models", runs / "diagnostics")
    assert files["CoLA.tsv"] == first.read_bytes() != other.read_bytes()


def test_a_suite_with_a_missing_task_gets_no_zip_and_one_log_line(embedded_root, runs, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="bort.leaderboard")
    selected = [t for t in TRAINED if t not in ("QQP", "MNLI-m")]
    manifest = _build(embedded_root, runs, tmp_path / "a", selected)
    written = sorted(p.name for p in (tmp_path / "a").glob("*.zip"))
    assert written == sorted(f"superglue-{m}.zip" for m in MODELS)
    lines = [r.getMessage() for r in caplog.records if "no zip" in r.getMessage()]
    assert lines == ["GLUE: no zip; params.yaml tasks lacks QQP, MNLI-m (the leaderboard takes only all 11 files)"]
    assert manifest["skipped"] == {"GLUE": ["QQP", "MNLI-m"]}


def test_race_gets_no_zip(embedded_root, runs, tmp_path):
    _build(embedded_root, runs, tmp_path / "a", [t for t in TRAINED if not t.startswith("RACE")])
    assert not any("race" in p.name.lower() for p in (tmp_path / "a").iterdir())


@pytest.mark.parametrize("task_name, edit, message", [
    ("WSC", lambda t: t.replace('"False"', '"false"').replace('"True"', '"true"'),
     'WSC.jsonl:1: label "false"; the leaderboard takes one of "False", "True"'),
    ("CoLA", lambda t: "\n".join(t.splitlines()[:-1]) + "\n", "19 rows for a test set of 20"),
    ("MultiRC", lambda t: t.replace('"answers"', '"options"', 1), "MultiRC.jsonl:1: expected each question"),
    ("ReCoRD", lambda t: t.replace('"label": "', '"label": "x', 1), "ReCoRD.jsonl:1: entity"),
    ("STS-B", lambda t: t.replace("\t", "\t9", 2).replace("index\t9prediction", "index\tprediction"),
     "expected a score in [0, 5]"),
])
def test_a_malformed_file_is_refused_with_one_line(embedded_root, runs, tmp_path, task_name, edit, message):
    copy = tmp_path / "runs"
    shutil.copytree(runs, copy)
    path = leaderboard.source(tasks.get_task(task_name), "bort", SEEDS[0], copy / "models", copy / "diagnostics")
    path.write_text(edit(path.read_text()))
    with pytest.raises(BortError) as err:
        _build(embedded_root, copy, tmp_path / "out")
    assert message in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_ax_row_order_is_checked_against_the_unlabelled_copy(embedded_root, tmp_path):
    folder = tmp_path / "diagnostic"
    shutil.copytree(tasks.task_dir(embedded_root, tasks.get_task("AX")), folder)
    assert "checked against diagnostic.tsv" in leaderboard.check_ax_order(folder)
    lines = (folder / "diagnostic.tsv").read_text().splitlines()
    a, b = lines[3].split("\t", 1), lines[4].split("\t", 1)
    lines[3], lines[4] = f"{a[0]}\t{b[1]}", f"{b[0]}\t{a[1]}"        # two rows swapped, indexes kept
    (folder / "diagnostic.tsv").write_text("\n".join(lines) + "\n")
    with pytest.raises(BortError, match="row 2 differs from diagnostic-full.tsv row 2"):
        leaderboard.check_ax_order(folder)
    (folder / "diagnostic.tsv").unlink()
    assert "no unlabelled copy" in leaderboard.check_ax_order(folder)


def test_the_stage_script_fails_with_one_line(tmp_path):
    (tmp_path / "params.yaml").write_text(f"tasks: {json.dumps(TRAINED)}\nfinetune:\n  seeds: [0]\n")
    out = run_module(str(ROOT / "pipeline" / "submissions.py"), "--data", str(tmp_path / "none"),
                     "--models", str(tmp_path), "--diagnostics", str(tmp_path), "--out", str(tmp_path / "out"),
                     cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.strip().count("\n") == 0 and out.stderr.startswith("error: ")
    assert "missing" in out.stderr and not (tmp_path / "out").exists()
