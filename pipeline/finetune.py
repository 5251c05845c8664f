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
from bort.finetune import load_trained, new_model, splits                     # noqa: E402
from bort import metrics as M                                                  # noqa: E402
from bort.errors import cli_main, setup_logging                               # noqa: E402
from bort.io import atomic_dir, write_json                                    # noqa: E402

log = logging.getLogger("finetune")
AGORA_KEYS = {k: type(v) for k, v in asdict(agora.AgoraConfig()).items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, choices=sorted(finetune.ENCODERS))
    parser.add_argument("--task", required=True, nargs="+", help="one or more task names")
    parser.add_argument("--parent", help="score the tasks with this task's trained model (diagnostics, MNLI-mm)")
    args = parser.parse_args(argv)
    setup_logging()
    task_list = [tasks.get_task(name) for name in args.task]
    section = params.section("finetune", finetune.SECTION_SCHEMA)
    cfg = finetune.config(section, args.model)
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
    with atomic_dir(finetune.FINETUNED / which / task.name) as tmp:
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
        labeler = load_trained(task, "bert", finetune.config(section, "bert"))
        pool = agora.Pool(json.loads(Path("models/agora_pool/texts.json").read_text()),
                          np.load("models/agora_pool/vectors.npy"))
        enc, vocab, _ = teacher.load_model(finetune.ENCODERS["bert"])

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
    with atomic_dir(finetune.FINETUNED / which / task.name) as tmp:
        model.net.save_parameters(str(tmp / "model.params"))
        _finish(task, model, held, result, tmp, test_all=tasks.load_split(task, directory, "test"))
    log.info("%s %s: %s (%.1f s)", which, task.name, result["scores"], time.perf_counter() - started)


def _finish(task, model, held, result, out_dir, test_all):
    """Score the held-out split and write the test submission, predicting each instance once
    (in the embedded data the held-out split *is* the labelled test split)."""
    test_keys = [json.dumps(i, sort_keys=True) for i in test_all]
    held_keys = [json.dumps(i, sort_keys=True) for i in held]
    known = dict(zip(test_keys, model.predict(test_all)))
    rest = [(k, i) for k, i in zip(held_keys, held) if k not in known]
    known.update(zip([k for k, _ in rest], model.predict([i for _, i in rest])))
    preds = tasks.map_labels(model.task, task, [known[k] for k in held_keys])
    result["scores"] = M.score(task, held, preds)          # map_labels: a parent scoring a diagnostic
    result["task_score"] = M.task_score(task, result["scores"])
    result["heldout_examples"] = len(held)
    test_preds = tasks.map_labels(model.task, task, [known[k] for k in test_keys])
    submission.write(task, test_all, test_preds, out_dir / "submission")
    write_json(Path("metrics/finetune") / result["model"] / f"{task.name}.json", result)


if __name__ == "__main__":
    sys.exit(cli_main(main))
