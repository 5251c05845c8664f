"""Stage `prepare`: task data in the official layouts, the text corpus, and the TF-IDF floor.

Embedded default (`data.source: null`): generate all 23 tasks into data/tasks/ and take the
corpus from installed packages (bort.corpus). With `data.source` naming a folder that holds the
official glue_data/, combined/ and RACE/ trees, validate every task with the same loaders and
copy them in. Either way, fit the TF-IDF + logistic-regression floor per task and write its
test scores to metrics/prepare.json.
"""
import logging
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bort import baseline, corpus, embedded, params, tasks                    # noqa: E402
from bort.errors import BortError, at, cli_main, setup_logging                # noqa: E402
from bort.io import atomic_dir, write_json                                    # noqa: E402

log = logging.getLogger("prepare")
SCHEMA = {"source": (str, type(None)), "corpus_source": (str, type(None)), "seed": int,
          "train_size": int, "dev_size": int, "test_size": int, "noise": float,
          "heldout_fraction": float}


def main(argv=None) -> int:
    setup_logging()
    p = params.section("data", SCHEMA)
    out_tasks, out_corpus = Path("data/tasks"), Path("data/corpus")
    with atomic_dir(out_tasks) as tmp:
        if p["source"] is None:
            sizes = {"train": p["train_size"], "dev": p["dev_size"], "test": p["test_size"]}
            log.info("generating the 23 embedded tasks %s", sizes)
            embedded.write_all(tmp, sizes, p["seed"], p["noise"])
        else:
            source = Path(p["source"])
            for suite_dir in sorted(set(tasks.SUITE_DIRS.values())):
                if not (source / suite_dir).is_dir():
                    raise at(source / suite_dir, None, "missing; expected the official "
                             f"{suite_dir}/ folder under params.yaml data.source")
                shutil.copytree(source / suite_dir, tmp / suite_dir)
        counts = {name: {split: len(tasks.load_split(t, tasks.task_dir(tmp, t), split))
                         for split in tasks.present_splits(t, tasks.task_dir(tmp, t))}
                  for name, t in tasks.TASKS.items()}
    docs = corpus.embedded_documents() if p["corpus_source"] is None else corpus.user_documents(p["corpus_source"])
    n_held = max(1, int(len(docs) * p["heldout_fraction"]))
    with atomic_dir(out_corpus) as tmp:
        (tmp / "train.txt").write_text("\n".join(docs[:-n_held]) + "\n", encoding="utf-8")
        (tmp / "heldout.txt").write_text("\n".join(docs[-n_held:]) + "\n", encoding="utf-8")
    log.info("corpus: %d documents (%d held out)", len(docs), n_held)
    floor = baseline.run_floor(tasks.TASKS, lambda t, s: tasks.load_split(t, tasks.task_dir(out_tasks, t), s),
                               seed=p["seed"])
    write_json("metrics/prepare.json", {
        "floor_tfidf_logreg": {name: {**m, "task_score": baseline.M.task_score(tasks.TASKS[name], m)}
                               for name, m in sorted(floor.items())},
        "examples": counts,
        "corpus": {"documents": len(docs), "heldout_documents": n_held,
                   "words": sum(len(d.split()) for d in docs),
                   "source": "pydoc_data.topics + sklearn/datasets/descr" if p["corpus_source"] is None
                   else "user"},
        "data_source": "embedded" if p["source"] is None else "official",
    })
    for name, m in sorted(floor.items()):
        log.info("floor %-14s %s", name, ", ".join(f"{k}={v:.3f}" for k, v in m.items()))
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
