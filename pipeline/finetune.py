"""Stage `finetune` (one DVC job per model and task): fine-tune, score on held-out data, submit.

  python pipeline/finetune.py --model bert --task RTE        # the source model, fine-tuned
  python pipeline/finetune.py --model bort --task RTE        # the distilled student
  python pipeline/finetune.py --model bort-agora --task RTE  # the student with Agora
  python pipeline/finetune.py --model bort --task MNLI-mm AX --parent MNLI-m   # scored by a parent's model

Honest evaluation (bort.md section 4): Agora reads the Agora split of dev, so every reported score
is measured on data it never saw -- the labelled test split of the embedded data, or, for the
official files whose test labels are hidden, a fixed seeded half of dev (the other half is
Agora's). Test predictions are also written under the leaderboard's file name and columns.
"""
import argparse
import json
import logging
import sys
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np                                                             # noqa: E402
from tqdm import tqdm                                                          # noqa: E402

from bort import agora, finetune, params, submission, tasks, teacher         # noqa: E402
from bort import metrics as M                                                  # noqa: E402
from bort.errors import BortError, cli_main, setup_logging                    # noqa: E402
from bort.io import atomic_dir, write_json                                    # noqa: E402

log = logging.getLogger("finetune")
MODELS = {"bert": Path("models/teacher"), "bort": Path("models/student"), "bort-agora": Path("models/student")}
CONFIG_KEYS = {k: type(v) for k, v in asdict(finetune.FinetuneConfig()).items()}
AGORA_KEYS = {k: type(v) for k, v in asdict(agora.AgoraConfig()).items()}


def splits(task, directory, heldout: str):
    """(train, Agora's dev, held-out, where the held-out numbers come from)."""
    train = tasks.load_split(task, directory, "train") if "train" in task.splits else []
    dev = tasks.load_split(task, directory, "dev") if "dev" in task.splits else []
    test = tasks.load_split(task, directory, "test") if "test" in task.splits else []
    labelled_test = [i for i in test if "label" in i or "answers" in i]
    mode = heldout if heldout != "auto" else ("test" if labelled_test else "dev_half")
    if mode == "test":
        if not labelled_test:
            raise BortError(f"finetune.heldout is 'test' but {task.name}'s test split has no labels; "
                            "expected 'dev_half' for the official files")
        return train, dev, labelled_test, "test split (labelled; never seen by Agora)"
    rng = np.random.RandomState(1234)
    order = rng.permutation(len(dev))
    half = len(dev) // 2
    if task.shape == "multirc":       # keep a question's answers on one side
        groups = sorted({i["group"] for i in dev})
        held_groups = set(np.array(groups)[rng.permutation(len(groups))[:len(groups) // 2]])
        return ([*train], [i for i in dev if i["group"] not in held_groups],
                [i for i in dev if i["group"] in held_groups], "held-out half of dev (seeded; never seen by Agora)")
    held = [dev[j] for j in sorted(order[:half])]
    agora_dev = [dev[j] for j in sorted(order[half:])]
    return train, agora_dev, held, "held-out half of dev (seeded; never seen by Agora)"


def new_model(task, which, cfg):
    encoder, vocab, arch = teacher.load_model(MODELS[which], dropout=cfg.dropout)
    return finetune.TaskModel(task, encoder, vocab, arch.hidden_size, cfg)


def load_trained(task, which, cfg):
    model = new_model(task, which, cfg)
    model.net.load_parameters(str(Path("models/finetune") / which / task.name / "model.params"))
    return model


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, choices=sorted(MODELS))
    parser.add_argument("--task", required=True, nargs="+", help="one or more task names")
    parser.add_argument("--parent", help="score the tasks with this task's trained model (diagnostics, MNLI-mm)")
    args = parser.parse_args(argv)
    setup_logging()
    task_list = [tasks.get_task(name) for name in args.task]
    section = params.section("finetune", {"heldout": str, "data": str, "bert": dict, "bort": dict,
                                          "agora": dict})
    key = "bert" if args.model == "bert" else "bort"
    cfg = finetune.FinetuneConfig(**params.check(dict(section[key]), CONFIG_KEYS, "finetune." + key))
    if args.parent:
        parent = tasks.get_task(args.parent)
        model = load_trained(parent, args.model, cfg)     # loaded once, scores every listed task
        for task in task_list:
            score_with_parent(task, parent, model, args.model, cfg, section)
        return 0
    for task in task_list:
        fine_tune(task, args.model, cfg, section)
    return 0


def score_with_parent(task, parent, model, which, cfg, section):
    directory = tasks.task_dir(section["data"], task)
    _, _, held, held_note = splits(task, directory, section["heldout"])
    model.task = task if task.labels == parent.labels else parent
    result = {"task": task.name, "model": which, "heldout": held_note, "config": asdict(cfg), "scored_by": parent.name}
    with atomic_dir(Path("models/finetune") / which / task.name) as tmp:
        _finish(task, model, held, result, tmp, test_all=tasks.load_split(task, directory, "test"))


def fine_tune(task, which, cfg, section):
    directory = tasks.task_dir(section["data"], task)
    started = time.perf_counter()
    train, agora_dev, held, held_note = splits(task, directory, section["heldout"])
    result = {"task": task.name, "model": which, "heldout": held_note, "config": asdict(cfg)}
    if cfg.max_train:
        train = train[:cfg.max_train]
    result["train_examples"] = len(train)
    bar = tqdm(desc=f"finetune {which} {task.name}", file=sys.stderr, unit="batch")
    if which == "bort-agora":
        acfg = agora.AgoraConfig(**params.check(section["agora"], AGORA_KEYS, "finetune.agora"))
        labeler = load_trained(task, "bert", finetune.FinetuneConfig(**params.check(section["bert"], CONFIG_KEYS, "finetune.bert")))
        pool = agora.Pool(json.loads(Path("models/agora_pool/texts.json").read_text()),
                          np.load("models/agora_pool/vectors.npy"))
        enc, vocab, _ = teacher.load_model(MODELS["bert"])

        def embed(texts):
            return teacher.sentence_embeddings(enc, vocab, texts)

        def score(instances, preds):
            return M.task_score(task, M.score(task, instances, preds))
        forbidden = {agora.text_key(i) for i in held}
        student = load_trained(task, "bort", cfg)      # step 1: the finetune-bort stage's model
        model, rounds = agora.run(task, student, train, agora_dev, labeler, pool,
                                  embed, acfg, forbidden, score, bar.update)
        result["agora"] = {"config": asdict(acfg), "rounds": rounds}
    else:
        model = new_model(task, which, cfg)
        result["epoch_losses"] = model.fit(train, bar.update)
    bar.close()
    if agora_dev:
        result["agora_dev_scores"] = M.score(task, agora_dev, model.predict(agora_dev))
    with atomic_dir(Path("models/finetune") / which / task.name) as tmp:
        model.net.save_parameters(str(tmp / "model.params"))
        _finish(task, model, held, result, tmp, test_all=tasks.load_split(task, directory, "test"))
    log.info("%s %s: %s (%.1f s)", which, task.name, result["scores"], time.perf_counter() - started)


def _finish(task, model, held, result, out_dir, test_all):
    """Score the held-out split and write the test submission, predicting each instance once
    (in the embedded data the held-out split *is* the labelled test split)."""
    known = {}
    for inst, pred in zip(test_all, model.predict(test_all)):
        known[json.dumps(inst, sort_keys=True)] = pred
    rest = [i for i in held if json.dumps(i, sort_keys=True) not in known]
    known.update(zip((json.dumps(i, sort_keys=True) for i in rest), model.predict(rest)))
    preds = tasks.map_labels(model.task, task, [known[json.dumps(i, sort_keys=True)] for i in held])
    result["scores"] = M.score(task, held, preds)          # map_labels: a parent scoring a diagnostic
    result["task_score"] = M.task_score(task, result["scores"])
    result["heldout_examples"] = len(held)
    test_preds = tasks.map_labels(model.task, task, [known[json.dumps(i, sort_keys=True)] for i in test_all])
    submission.write(task, test_all, test_preds, out_dir / "submission")
    write_json(Path("metrics/finetune") / result["model"] / f"{task.name}.json", result)


if __name__ == "__main__":
    sys.exit(cli_main(main))
