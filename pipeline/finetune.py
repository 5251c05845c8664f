"""Stage `finetune` (one DVC job per task): BERT, Bort and Bort + Agora on one task; held-out
scores and leaderboard submissions. Stage `diagnostics` scores the sets that have no training data.

  python pipeline/finetune.py --task RTE                 # bert, then bort, then bort-agora
  python pipeline/finetune.py --task RTE --model bort    # one model (bort-agora reads the other two)
  python pipeline/finetune.py --diagnostics              # MNLI-mm, AX, AX-b, AX-g by their parents' models

The three models of a task run in one process because Agora needs both others -- the fine-tuned
source model labels its new points, the fine-tuned student is where it starts -- and because a
process costs about 2.7 s before any work (DVC, then importing MXNet, GluonNLP and
scikit-learn), which over 63 per-model stages was a third of the embedded budget.

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
from bort.errors import BortError, cli_main, setup_logging                    # noqa: E402
from bort.io import atomic_dir, write_json                                    # noqa: E402

log = logging.getLogger("finetune")
AGORA_KEYS = {k: type(v) for k, v in asdict(agora.AgoraConfig()).items()}
MODELS = ("bert", "bort", "bort-agora")      # in this order: Agora needs the other two


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--task", nargs="+", help="tasks with training data, e.g. RTE CoLA")
    what.add_argument("--diagnostics", action="store_true",
                      help="score every diagnostic set (and MNLI-mm) with its parent task's models")
    parser.add_argument("--model", nargs="+", choices=MODELS, default=list(MODELS),
                        help="which models (default: all three, in dependency order)")
    args = parser.parse_args(argv)
    setup_logging()
    section = params.section("finetune", finetune.SECTION_SCHEMA)
    which_list = [m for m in MODELS if m in args.model]
    if args.diagnostics:
        score_diagnostics(which_list, section)
        return 0
    task_list = [tasks.get_task(name) for name in args.task]
    for task in task_list:
        if finetune.scored_by(task):
            raise BortError(f"--task {task.name}: it is scored by {finetune.scored_by(task)}'s model, "
                            "not trained; expected --diagnostics")
    for task in task_list:
        trained = {}
        for which in which_list:
            trained[which] = fine_tune(task, which, section, trained)
    return 0


def score_diagnostics(which_list, section):
    """Each diagnostic set and MNLI-mm with the model of the task that scores it
    (`bort.finetune.scored_by`), every parent model loaded once."""
    shared = sorted((t for t in tasks.TASKS.values() if finetune.scored_by(t)), key=lambda t: t.name)
    for which in which_list:
        cfg = finetune.config(section, which)
        for parent_name in sorted({finetune.scored_by(t) for t in shared}):
            parent = tasks.get_task(parent_name)
            model = load_trained(parent, which, cfg)
            for task in (t for t in shared if finetune.scored_by(t) == parent_name):
                directory = tasks.task_dir(section["data"], task)
                _, _, held, held_note = splits(task, directory, section["heldout"])
                model.task = task if task.labels == parent.labels else parent
                result = {"task": task.name, "model": which, "heldout": held_note, "config": asdict(cfg),
                          "scored_by": parent.name}
                with atomic_dir(finetune.FINETUNED / which / task.name) as tmp:
                    _finish(task, model, held, result, tmp, test_all=tasks.load_split(task, directory, "test"))


def fine_tune(task, which, section, trained):
    """Fine-tune model `which` on `task`, score it, write its model, metrics and submission.
    `trained` holds this task's models fine-tuned earlier in the same process (Agora's labeler
    and starting point); missing ones are read from their stages' outputs."""
    cfg = finetune.config(section, which)
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
        labeler = trained.get("bert") or load_trained(task, "bert", finetune.config(section, "bert"))
        pool = agora.Pool(json.loads(Path("models/agora_pool/texts.json").read_text()),
                          np.load("models/agora_pool/vectors.npy"))
        enc, vocab, _ = teacher.load_model(finetune.ENCODERS["bert"])

        def embed(texts):
            return teacher.sentence_embeddings(enc, vocab, texts)

        def score(instances, preds):
            return M.task_score(task, M.score(task, instances, preds))
        forbidden = {agora.text_key(i) for i in held}
        # step 1 is the bort model of this task; Agora continues training it (its outputs are written)
        student = trained.pop("bort", None) or load_trained(task, "bort", cfg)
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
    return model


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
