"""The loaders and the prepare stage on official files as distributed: byte-exact excerpts of
GLUE's and SuperGLUE's downloads (tests/fixtures/official/SOURCES.md says where each is from)."""
import json
import shutil

import pytest
import yaml

from bort import tasks
from conftest import ROOT, run_module
from test_reliability import one_error_line, prepare, project

OFFICIAL = ROOT / "tests" / "fixtures" / "official"
FIVE = ["SST-2", "MRPC", "RTE", "CB", "COPA"]


@pytest.mark.parametrize("name", FIVE)
def test_official_excerpts_load(name):
    task = tasks.TASKS[name]
    result = tasks.check(task, tasks.task_dir(OFFICIAL, task))
    assert sorted(result) == ["dev", "test", "train"]
    for split, summary in result.items():
        assert summary["examples"] == 8
        assert summary["labelled"] == (0 if split == "test" else 8)      # official test labels are hidden


def test_mrpc_byte_order_mark_is_read():
    raw = (OFFICIAL / "glue_data" / "MRPC" / "train.tsv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfQuality\t")                  # as GLUE's download writes it
    train = tasks.load_split(tasks.TASKS["MRPC"], OFFICIAL / "glue_data" / "MRPC", "train")
    assert [i["label"] for i in train] == [1, 0, 1, 0, 1, 1, 0, 1]
    assert train[0]["id"] == "0"


@pytest.mark.parametrize("name", ["diagnostic.tsv", "AX.tsv"])
def test_ax_check_accepts_the_unlabelled_public_files(tmp_path, name):
    shutil.copy(OFFICIAL / "glue_data" / "diagnostic" / "diagnostic.tsv", tmp_path / name)
    out = run_module("-m", "bort.tasks", "check", "AX", str(tmp_path), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["splits"] == {"test": {"examples": 8, "labelled": 0}}


def test_prepare_on_the_five_official_tasks(tmp_path, embedded_root):
    """Only glue_data/{SST-2, RTE, MRPC} and combined/{CB, COPA}: every task gets its counts and a
    floor measured on the held-out half of dev (official test labels are hidden)."""
    source = tmp_path / "official"
    for folder in ("glue_data/SST-2", "glue_data/RTE", "glue_data/MRPC", "combined/CB", "combined/COPA"):
        shutil.copytree(OFFICIAL / folder, source / folder)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["source"] = str(source)
    params["tasks"] = FIVE
    root = project(tmp_path / "proj", embedded_root, params)
    result = prepare(root)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((root / "metrics" / "prepare.json").read_text())
    assert sorted(metrics["floor_tfidf_logreg"]) == sorted(FIVE)
    assert metrics["examples"]["MRPC"] == {"dev": 8, "test": 8, "train": 8}
    assert metrics["data_source"] == "official"
    copied = (root / "data" / "tasks" / "glue_data" / "MRPC" / "train.tsv").read_bytes()
    assert copied == (source / "glue_data" / "MRPC" / "train.tsv").read_bytes()    # byte-exact copy


def test_a_missing_selected_split_is_named(tmp_path, embedded_root):
    source = tmp_path / "official"
    shutil.copytree(OFFICIAL / "combined" / "CB", source / "combined" / "CB")
    (source / "combined" / "CB" / "val.jsonl").unlink()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["source"], params["tasks"] = str(source), ["CB"]
    line = one_error_line(prepare(project(tmp_path / "proj", embedded_root, params)))
    assert line.endswith("combined/CB/val.jsonl: missing; CB is in params.yaml tasks, so its official dev split "
                         "(val.jsonl) must exist under combined/")
