"""Bad input ends in one line naming the file/line/key and a non-zero exit; earlier outputs survive."""
import hashlib
import shutil
from pathlib import Path

import yaml

from conftest import ROOT, run_module


def tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def project(tmp_path, embedded_root, params):
    (tmp_path / "data").mkdir(parents=True)
    shutil.copytree(embedded_root, tmp_path / "data" / "tasks")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp_path


def prepare(root):
    """pipeline/prepare.py as dvc.yaml runs it, in the project folder `root`."""
    return run_module(str(ROOT / "pipeline" / "prepare.py"), "--tasks", "data/tasks", "--corpus", "data/corpus",
                      "--metrics", "metrics/prepare.json", cwd=root)


def one_error_line(result):
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert lines[-1].startswith("error: ") and not any("Traceback" in l for l in lines), result.stderr[-2000:]
    return lines[-1]


def test_wrong_typed_param_leaves_earlier_outputs_intact(tmp_path, embedded_root):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["train_size"] = "many"
    root = project(tmp_path, embedded_root, params)
    before = tree_digest(root / "data" / "tasks")
    line = one_error_line(prepare(root))
    assert line == "error: params.yaml: key data.train_size: expected int, got str 'many'"
    assert tree_digest(root / "data" / "tasks") == before


def test_truncated_official_file_fails_validation_and_keeps_earlier_data(tmp_path, embedded_root):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    source = tmp_path / "official"
    shutil.copytree(embedded_root, source)
    path = source / "glue_data" / "RTE" / "dev.tsv"
    text = path.read_text()
    path.write_text(text[: len(text) // 2].rsplit("\t", 1)[0] + "\n")       # cut mid-row
    params["data"]["source"] = str(source)
    root = project(tmp_path / "proj", embedded_root, params)
    before = tree_digest(root / "data" / "tasks")
    line = one_error_line(prepare(root))
    assert "RTE/dev.tsv:" in line and "tab-separated fields" in line
    assert tree_digest(root / "data" / "tasks") == before
    assert not (root / "data" / "tasks.tmp").exists()


def test_missing_official_suite_is_named(tmp_path, embedded_root):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    source = tmp_path / "official"
    shutil.copytree(embedded_root / "glue_data", source / "glue_data")
    shutil.copytree(embedded_root / "RACE", source / "RACE")
    params["data"]["source"] = str(source)
    root = project(tmp_path / "proj", embedded_root, params)
    line = one_error_line(prepare(root))
    assert line.endswith("combined/BoolQ/train.jsonl: missing; BoolQ is in params.yaml tasks, so its official "
                         "train split (train.jsonl) must exist under combined/")


def test_a_subset_of_tasks_needs_only_its_files(tmp_path, embedded_root):
    """Only the selected tasks' files (and the diagnostics their models score) must exist."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    source = tmp_path / "official"
    for folder in ("glue_data/SST-2", "glue_data/MRPC", "combined/CB", "combined/RTE"):
        shutil.copytree(embedded_root / folder, source / folder)
    params["data"]["source"] = str(source)
    params["tasks"] = ["SST-2", "MRPC", "CB", "SuperGLUE-RTE"]
    root = project(tmp_path / "proj", embedded_root, params)
    line = one_error_line(prepare(root))                   # AX-b and AX-g follow SuperGLUE-RTE
    assert line.endswith("combined/AX-b/AX-b.jsonl: missing; AX-b is scored by SuperGLUE-RTE's model, which "
                         "params.yaml tasks selects, so its official test split (AX-b.jsonl) must exist under combined/")
    for folder in ("combined/AX-b", "combined/AX-g"):
        shutil.copytree(embedded_root / folder, source / folder)
    result = prepare(root)
    assert result.returncode == 0, result.stderr[-2000:]
    import json
    counts = json.loads((root / "metrics" / "prepare.json").read_text())["examples"]
    assert sorted(counts) == ["AX-b", "AX-g", "CB", "MRPC", "SST-2", "SuperGLUE-RTE"]
    assert sorted(p.name for p in (root / "data" / "tasks" / "glue_data").iterdir()) == ["MRPC", "SST-2"]


def test_missing_task_file_is_named(tmp_path, embedded_root):
    folder = tmp_path / "WiC"
    shutil.copytree(embedded_root / "combined" / "WiC", folder)
    (folder / "val.jsonl").unlink()
    from bort import tasks
    try:
        tasks.load_split(tasks.TASKS["WiC"], folder, "dev")
    except Exception as err:                    # noqa: BLE001 -- the message is what we test
        assert str(err) == f"{folder / 'val.jsonl'}: missing WiC dev file"
    else:
        raise AssertionError("a missing file must be an error")


def test_impossible_architecture_in_params(tmp_path):
    from bort.extraction import bert as extraction
    from bort.arch import Arch
    from bort.errors import BortError
    try:
        extraction.search_space(Arch(6, 12, 384, 1536), [2], [4], [192], [2048])
    except BortError as err:
        assert "extract.space.intermediate_size: [2048] outside 1..1536" in str(err)
    else:
        raise AssertionError("an architecture outside the source must be an error")
