import json

from bort import submission, tasks


def _load(embedded_root, name):
    task = tasks.TASKS[name]
    return task, tasks.load_split(task, tasks.task_dir(embedded_root, task), "test")


def test_glue_files(embedded_root, tmp_path):
    task, test = _load(embedded_root, "MNLI-mm")
    path = submission.write(task, test, [0] * len(test), tmp_path)
    lines = path.read_text().splitlines()
    assert path.name == "MNLI-mm.tsv" and lines[0] == "index\tprediction"
    assert lines[1] == f"{test[0]['id']}\tcontradiction" and len(lines) == len(test) + 1
    task, test = _load(embedded_root, "STS-B")
    path = submission.write(task, test, [7.5] * len(test), tmp_path)
    assert path.name == "STS-B.tsv" and path.read_text().splitlines()[1].endswith("\t5.0")


def test_superglue_files(embedded_root, tmp_path):
    task, test = _load(embedded_root, "SuperGLUE-RTE")
    path = submission.write(task, test, [1] * len(test), tmp_path)
    first = json.loads(path.read_text().splitlines()[0])
    assert path.name == "RTE.jsonl" and first == {"idx": test[0]["id"], "label": "not_entailment"}
    task, test = _load(embedded_root, "BoolQ")
    path = submission.write(task, test, [1] * len(test), tmp_path)
    assert json.loads(path.read_text().splitlines()[0])["label"] == "true"
    task, test = _load(embedded_root, "MultiRC")
    path = submission.write(task, test, [1] * len(test), tmp_path)
    row = json.loads(path.read_text().splitlines()[0])
    assert set(row) == {"idx", "passage"} and {"idx", "answers"} <= set(row["passage"]["questions"][0])
    assert row["passage"]["questions"][0]["answers"][0] == {"idx": 0, "label": 1}
    task, test = _load(embedded_root, "ReCoRD")
    path = submission.write(task, test, [i["candidates"][0] for i in test], tmp_path)
    assert json.loads(path.read_text().splitlines()[0])["label"] == test[0]["candidates"][0]
    names = {submission.file_name(t) for t in tasks.TASKS.values() if t.suite == "superglue"}
    assert names == {f"{n}.jsonl" for n in ["BoolQ", "CB", "COPA", "MultiRC", "ReCoRD", "RTE", "WiC", "WSC", "AX-b", "AX-g"]}
    glue = {submission.file_name(t) for t in tasks.TASKS.values() if t.suite == "glue"}
    assert glue == {f"{n}.tsv" for n in ["CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI-m", "MNLI-mm", "QNLI",
                                         "RTE", "WNLI", "AX"]}
