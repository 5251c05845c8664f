"""The pretraining / distillation corpus: plain text, one document per line.

Embedded default: real English prose that an installed package ships, so nothing is downloaded
and nothing is generated. We take the Python reference documentation that every CPython carries
(`pydoc_data.topics`, ~65k words of technical English) and the data-set descriptions that
scikit-learn ships (`sklearn/datasets/descr/*.rst`). Generated text would teach the student the
task generators' templates instead of English, so it is not used. Paper scale points
`data.corpus_source` at a folder of the user's .txt files (one document per line).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, List, Sequence

from bort.errors import at

TEXT_KEYS = ("text_a", "text_b", "question", "query")     # the text segments of a task instance
_MARKUP = re.compile(r"[*=~^`|]{3,}|::|\.\. ")


def paragraphs(text: str, min_words: int = 8) -> Iterable[str]:
    """Prose paragraphs of a reStructuredText-like document, one line each."""
    for block in re.split(r"\n\s*\n", text):
        lines = [l.strip() for l in block.splitlines() if l.strip()]
        if not lines or any(_MARKUP.search(l) for l in lines):
            continue
        paragraph = " ".join(lines)
        words = paragraph.split()
        letters = sum(ch.isalpha() or ch.isspace() for ch in paragraph) / max(1, len(paragraph))
        if len(words) >= min_words and letters > 0.85:
            yield paragraph


def embedded_documents() -> List[str]:
    import pydoc_data.topics as topics
    import sklearn
    docs = [p for key in sorted(topics.topics) for p in paragraphs(topics.topics[key])]
    descr = Path(sklearn.__file__).parent / "datasets" / "descr"
    for path in sorted(descr.glob("*.rst")):
        docs.extend(paragraphs(path.read_text(encoding="utf-8")))
    return docs


def user_documents(folder) -> List[str]:
    folder = Path(folder)
    files = sorted(folder.glob("*.txt"))
    if not files:
        raise at(folder, None, "expected .txt files with one document per line")
    docs = []
    for path in files:
        docs.extend(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return docs


def task_texts(instances: Sequence[dict]) -> List[str]:
    """The distinct text segments (`TEXT_KEYS`) of a task's instances, sorted: unlabelled text in
    the task's own domain -- what task-specific distillation adds to the corpus (TinyBERT, arXiv
    1909.10351, distils on the task's data), and what Agora's pool draws on. Only ever called with
    training splits, so no held-out text reaches the student."""
    return sorted({inst[k] for inst in instances for k in TEXT_KEYS if isinstance(inst.get(k), str)})


def training_texts(data_root) -> List[str]:
    """`task_texts` of the training split of every task prepared under `data_root` (the prepare
    stage writes the tasks of params.yaml `tasks`), task by task in registry order."""
    from bort import tasks
    out: List[str] = []
    for task in tasks.TASKS.values():
        folder = tasks.task_dir(data_root, task)
        if task.trains and folder.is_dir():
            out.extend(task_texts(tasks.load_split(task, folder, "train")))
    return out
