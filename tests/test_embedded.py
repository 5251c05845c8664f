import filecmp

from bort import baseline, embedded, tasks
from bort.finetune.heldout import splits
from conftest import SMALL


def _same_tree(a, b):
    cmp = filecmp.dircmp(a, b)
    assert not cmp.left_only and not cmp.right_only and not cmp.diff_files, (cmp.left_only, cmp.diff_files)
    for sub in cmp.common_dirs:
        _same_tree(a / sub, b / sub)


def test_generation_is_deterministic(tmp_path, embedded_root):
    embedded.write_all(tmp_path, SMALL, seed=0, noise=0.05)
    _same_tree(tmp_path, embedded_root)


def test_floor_is_above_chance_but_not_perfect(tmp_path):
    embedded.write_all(tmp_path, {"train": 300, "dev": 20, "test": 200}, seed=1, noise=0.05)
    chosen = [tasks.TASKS[n] for n in ("MNLI-m", "SST-2", "CoLA", "WiC", "AX")]
    res = baseline.run_floor(chosen, lambda t: splits(t, tasks.task_dir(tmp_path, t), "test"))
    assert res["MNLI-m"]["acc"] > 0.45 and res["SST-2"]["acc"] > 0.55 and res["CoLA"]["mcc"] > 0.1
    assert all(tasks.TASKS[n] and max(m.values()) < 0.97 for n, m in res.items())
    assert res["WiC"]["acc"] < 0.7          # needs the relation between the two contexts


def test_no_heldout_input_repeats_a_training_input(embedded_root):
    def key(inst):
        return tuple(inst.get(k) for k in ("text_a", "text_b", "question", "query", "choices") if k in inst
                     and not isinstance(inst.get(k), list)) + tuple(inst.get("choices", []))
    for name, task in tasks.TASKS.items():
        if "train" not in task.splits:
            continue
        folder = tasks.task_dir(embedded_root, task)
        train = {key(i) for i in tasks.load_split(task, folder, "train")}
        for split in ("dev", "test"):
            held = [key(i) for i in tasks.load_split(task, folder, split)]
            assert not train & set(held), (name, split)
