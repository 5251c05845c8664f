import json
import shutil

import pytest

from bort import tasks
from bort.errors import BortError
from conftest import SMALL, run_module


def test_registry_has_the_23_tasks():
    assert len(tasks.TASKS) == 23
    suites = [t.suite for t in tasks.TASKS.values()]
    assert suites.count("glue") == 11 and suites.count("superglue") == 10 and suites.count("race") == 2
    diagnostics = {n: t.scored_by for n, t in tasks.TASKS.items() if t.is_diagnostic}
    assert diagnostics == {"AX": "MNLI-m", "AX-b": "SuperGLUE-RTE", "AX-g": "SuperGLUE-RTE"}


def test_list_json_cli():
    out = run_module("-m", "bort.tasks", "list", "--json")
    assert out.returncode == 0, out.stderr
    listed = json.loads(out.stdout)
    assert [t["name"] for t in listed] == list(tasks.TASKS)


@pytest.mark.parametrize("name", list(tasks.TASKS))
def test_every_generated_task_loads(embedded_root, name):
    task = tasks.TASKS[name]
    result = tasks.check(task, tasks.task_dir(embedded_root, task))
    assert set(result) == set(task.splits)
    for split, summary in result.items():
        assert summary["examples"] > 0 and summary["labelled"] == summary["examples"]


def test_check_cli_succeeds(embedded_root):
    out = run_module("-m", "bort.tasks", "check", "MNLI-mm", str(embedded_root / "glue_data" / "MNLI"), "--json")
    assert out.returncode == 0, out.stderr
    splits = json.loads(out.stdout)["splits"]
    assert splits["dev"]["examples"] == SMALL["dev"]


def _copy(embedded_root, tmp_path, task_name):
    task = tasks.TASKS[task_name]
    dst = tmp_path / task_name
    shutil.copytree(tasks.task_dir(embedded_root, task), dst)
    return task, dst


def _expect_error(task, folder, needle):
    out = run_module("-m", "bort.tasks", "check", task.name, str(folder))
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert needle in lines[0], lines[0]
    return lines[0]


def test_short_tsv_row_names_file_and_line(embedded_root, tmp_path):
    task, folder = _copy(embedded_root, tmp_path, "SST-2")
    path = folder / "train.tsv"
    lines = path.read_text().splitlines()
    lines[6] = lines[6].split("\t")[0]                 # drop the label column
    path.write_text("\n".join(lines) + "\n")
    _expect_error(task, folder, f"{path}:7: expected 2 tab-separated fields, got 1")


def test_bad_json_line(embedded_root, tmp_path):
    task, folder = _copy(embedded_root, tmp_path, "BoolQ")
    path = folder / "val.jsonl"
    lines = path.read_text().splitlines()
    lines[3] = lines[3][:-5]
    path.write_text("\n".join(lines) + "\n")
    _expect_error(task, folder, f"{path}:4: invalid JSON")


def test_unknown_label(embedded_root, tmp_path):
    task, folder = _copy(embedded_root, tmp_path, "CB")
    path = folder / "train.jsonl"
    lines = path.read_text().splitlines()
    record = json.loads(lines[1]); record["label"] = "maybe"
    lines[1] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")
    _expect_error(task, folder, f"{path}:2: unknown label 'maybe'")


def test_missing_field(embedded_root, tmp_path):
    task, folder = _copy(embedded_root, tmp_path, "COPA")
    path = folder / "train.jsonl"
    lines = path.read_text().splitlines()
    record = json.loads(lines[0]); del record["choice2"]
    lines[0] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")
    _expect_error(task, folder, f"{path}:1: missing required field 'choice2'")


def test_missing_folder_and_unknown_task(tmp_path):
    _expect_error(tasks.TASKS["RTE"], tmp_path / "nowhere", "expected the official RTE folder")
    out = run_module("-m", "bort.tasks", "check", "GLUE-42", str(tmp_path))
    assert out.returncode == 2 and "expected one of: CoLA, SST-2" in out.stderr


def test_race_bad_answer(embedded_root, tmp_path):
    task = tasks.TASKS["RACE-high"]
    folder = tmp_path / "RACE"
    shutil.copytree(embedded_root / "RACE", folder)
    path = folder / "dev" / "high" / "0.txt"
    record = json.loads(path.read_text()); record["answers"][0] = "E"
    path.write_text(json.dumps(record))
    _expect_error(task, folder, f"{path}:1: question 0: expected an answer in A-D")


def test_race_passage_without_answers_in_train(embedded_root, tmp_path):
    """A labelled split never drops a label silently (was: counted as unlabelled)."""
    task = tasks.TASKS["RACE-middle"]
    folder = tmp_path / "RACE"
    shutil.copytree(embedded_root / "RACE", folder)
    path = folder / "train" / "middle" / "2.txt"
    record = json.loads(path.read_text()); del record["answers"]
    path.write_text(json.dumps(record))
    _expect_error(task, folder, f"{path}:1: no gold label (field 'answers') in the labelled train split")


def test_missing_label_in_labelled_jsonl(embedded_root, tmp_path):
    task, folder = _copy(embedded_root, tmp_path, "MultiRC")
    path = folder / "train.jsonl"
    lines = path.read_text().splitlines()
    record = json.loads(lines[1])
    del record["passage"]["questions"][0]["answers"][0]["label"]
    lines[1] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")
    _expect_error(task, folder, f"{path}:2: no gold label")


def test_bom_and_crlf_as_distributed(embedded_root, tmp_path):
    """MRPC's official train/dev files start with a UTF-8 byte-order mark and end lines in CRLF."""
    task, folder = _copy(embedded_root, tmp_path, "MRPC")
    for name in ("train.tsv", "dev.tsv"):
        path = folder / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    result = tasks.check(task, folder)
    assert result["train"]["examples"] == result["train"]["labelled"] == SMALL["train"]


def test_ax_unlabelled_variants(embedded_root, tmp_path):
    """GLUE's download has diagnostic/diagnostic.tsv, the leaderboard's AX.tsv: both unlabelled."""
    task = tasks.TASKS["AX"]
    source = tasks.task_dir(embedded_root, task)
    for name in ("diagnostic.tsv", "AX.tsv"):
        folder = tmp_path / name
        folder.mkdir()
        shutil.copy(source / "diagnostic.tsv", folder / name)
        out = run_module("-m", "bort.tasks", "check", "AX", str(folder), "--json")
        assert out.returncode == 0, out.stderr
        test = json.loads(out.stdout)["splits"]["test"]
        assert test == {"examples": SMALL["test"], "labelled": 0}
    full = tasks.load_split(task, source, "test")                  # diagnostic-full.tsv preferred
    assert all("label" in i for i in full) and len(full) == SMALL["test"]


def test_cola_headerless_and_official_unlabelled_test(embedded_root, tmp_path):
    task, folder = _copy(embedded_root, tmp_path, "CoLA")
    first = (folder / "train.tsv").read_text().splitlines()[0].split("\t")
    assert len(first) == 4 and first[1] in ("0", "1")          # no header row
    (folder / "test.tsv").write_text("index\tsentence\n0\tthe dog barked.\n1\tbarked dog the.\n")
    test = tasks.load_split(task, folder, "test")
    assert len(test) == 2 and all("label" not in i for i in test)


def test_qqp_malformed_rows_are_skipped(embedded_root):
    task = tasks.TASKS["QQP"]
    train = tasks.load_split(task, tasks.task_dir(embedded_root, task), "train")
    assert len(train) == SMALL["train"]                        # the 2 broken rows are skipped


def test_shapes_of_structured_tasks(embedded_root):
    def load(name, split="dev"):
        t = tasks.TASKS[name]
        return tasks.load_split(t, tasks.task_dir(embedded_root, t), split)
    multirc = load("MultiRC")
    assert all({"group", "text_b", "label"} <= set(i) for i in multirc)
    record = load("ReCoRD")
    assert all(set(i["answers"]) <= set(i["candidates"]) for i in record)
    race = load("RACE-middle")
    assert all(len(i["choices"]) == 4 and 0 <= i["label"] < 4 for i in race)
    stsb = load("STS-B")
    assert all(isinstance(i["label"], float) and 0 <= i["label"] <= 5 for i in stsb)
    wic = load("WiC")[0]
    f = wic["fields"]
    assert f["sentence1"][f["start1"]:f["end1"]] == f["word"]
    axg = load("AX-g", "test")
    assert all("pair_id" in i for i in axg)


def test_get_task_error():
    with pytest.raises(BortError, match="expected one of"):
        tasks.get_task("nope")
