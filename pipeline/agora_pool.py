"""Stage `agora-pool`: Agora's unlabelled pool and its teacher sentence embeddings, computed once.

The pool is what Agora may sample "near" a miss from (bort.md section 4): sentences of the
corpus and the *training* texts of every task (never a dev or test text), embedded by the
teacher with mean pooling. Writes models/agora_pool/{texts.json, vectors.npy}.
"""
import json
import logging
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np                                                             # noqa: E402

from bort import params, tasks, teacher                                       # noqa: E402
from bort.errors import cli_main, setup_logging                               # noqa: E402
from bort.io import atomic_dir                                                # noqa: E402

log = logging.getLogger("agora-pool")
SEGMENT_KEYS = ("text_a", "text_b", "question", "query")


def pool_texts(data_root, corpus_lines, per_task: int, corpus_sentences: int, seed: int):
    rng = np.random.RandomState(seed)
    texts = set()
    for name in sorted(tasks.TASKS):
        task = tasks.TASKS[name]
        if "train" not in task.splits:
            continue
        seen = sorted({inst[k] for inst in tasks.load_split(task, tasks.task_dir(data_root, task), "train")
                       for k in SEGMENT_KEYS if isinstance(inst.get(k), str)})
        take = rng.permutation(len(seen))[:per_task]
        texts.update(seen[j] for j in sorted(take))
    sentences = sorted({s.strip() for line in corpus_lines for s in re.split(r"(?<=[.!?])\s+", line)
                        if 5 <= len(s.split()) <= 40})
    take = rng.permutation(len(sentences))[:corpus_sentences]
    texts.update(sentences[j] for j in sorted(take))
    return sorted(texts)


def main(argv=None) -> int:
    setup_logging()
    p = params.section("agora_pool", {"data": str, "per_task": int, "corpus_sentences": int, "seed": int,
                                      "max_len": int})
    corpus = Path("data/corpus/train.txt").read_text(encoding="utf-8").splitlines()
    texts = pool_texts(p["data"], corpus, p["per_task"], p["corpus_sentences"], p["seed"])
    model, vocab, _ = teacher.load_model(Path("models/teacher"))
    log.info("embedding %d pool texts with the teacher", len(texts))
    vectors = teacher.sentence_embeddings(model, vocab, texts, max_len=p["max_len"])
    with atomic_dir(Path("models/agora_pool")) as tmp:
        (tmp / "texts.json").write_text(json.dumps(texts, indent=0) + "\n", encoding="utf-8")
        np.save(tmp / "vectors.npy", vectors.astype(np.float32))
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
