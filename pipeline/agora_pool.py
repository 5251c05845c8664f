"""Stage `agora-pool`: Agora's unlabelled pool and its teacher sentence embeddings, computed once.

The pool is what Agora may sample "near" a miss from (bort.agora): sentences of the corpus and the
*training* texts of every task (never a dev or test text), embedded by the teacher with mean
pooling, on the first context of params.yaml `device` (bort.device).

  python pipeline/agora_pool.py --tasks data/tasks --corpus data/corpus --teacher models/teacher \
      --out models/agora_pool
"""
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bort import agora, cli, device, tasks, teacher                           # noqa: E402
from bort.errors import cli_main, setup_logging                               # noqa: E402
from bort.io import atomic_dir, read_lines                                    # noqa: E402
from bort.params import Section                                               # noqa: E402

log = logging.getLogger("agora-pool")


@dataclass(frozen=True)
class AgoraPoolConfig(Section):
    """params.yaml `agora_pool`."""
    per_task: int                  # training texts per task in the pool
    corpus_sentences: int
    max_len: int                   # tokens per text when embedding
    seed: int


def main(argv=None) -> int:
    args = cli.parser(__doc__, {"tasks": "the task folders (training splits are read)",
                                "corpus": "folder with train.txt", "teacher": "the teacher model folder",
                                "out": "output: the pool folder"}).parse_args(argv)
    setup_logging()
    p = AgoraPoolConfig.load("agora_pool")
    prepared = [t for _, t in sorted(tasks.TASKS.items())          # the tasks prepare wrote (`tasks` and
                if "train" in t.splits                                  # their diagnostics; all 23 embedded)
                and tasks.split_path(t, tasks.task_dir(args.tasks, t), "train").exists()]
    training = [tasks.load_split(t, tasks.task_dir(args.tasks, t), "train") for t in prepared]
    texts = agora.pool_texts(training, read_lines(args.corpus / "train.txt"), p.per_task, p.corpus_sentences, p.seed)
    ctx = device.contexts()[0]                     # inference: the first context
    model, vocab, arch = teacher.load_model(args.teacher)
    device.place(model, [ctx])
    on_gpu = device.uses_gpu([ctx])                # CPU: ONNX Runtime on the same graph (7x MXNet here)
    log.info("embedding %d pool texts with the teacher on %s", len(texts), ctx if on_gpu else "ONNX Runtime (CPU)")
    with ctx:
        embed = (lambda t: teacher.sentence_embeddings(model, vocab, t, max_len=p.max_len)) if on_gpu else \
            teacher.onnx_embedder(model, vocab, arch, max_len=p.max_len)
        pool = agora.Pool(texts, embed(texts))
    with atomic_dir(args.out) as tmp:
        pool.save(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
