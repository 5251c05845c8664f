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


def test_task_specific_distillation_reads_training_texts_only(embedded_root):
    """pretrain.task_texts adds the prepared tasks' unlabelled training texts to the corpus: exactly
    the text segments of every trained task's training split, none read from dev or test."""
    from bort import corpus
    texts = corpus.training_texts(embedded_root)
    train = set()
    for task in tasks.TASKS.values():
        if task.trains:
            train |= set(corpus.task_texts(tasks.load_split(task, tasks.task_dir(embedded_root, task), "train")))
    assert set(texts) == train and len(texts) >= len(train)
    race = tasks.TASKS["RACE-middle"]
    dev = set(corpus.task_texts(tasks.load_split(race, tasks.task_dir(embedded_root, race), "dev")))
    assert dev - train and not (dev - train) & set(texts)       # a dev-only question never gets in
