"""Each task shape trains on a tiny, plainly learnable slice and beats chance."""
import numpy as np
import pytest

from bort import finetune, metrics as M, tasks, teacher
from bort.arch import Arch

WORDS = ["apple", "river", "music", "garden", "window", "teacher", "winter", "market", "letter", "bridge"]


@pytest.fixture(scope="module")
def vocab():
    return teacher.load_wordpiece_vocab(teacher.minilm_dir() / "vocab.txt")


def tiny_model(task, vocab, epochs=15):
    import mxnet as mx
    arch = Arch(1, 2, 32, 64, vocab_size=len(vocab), max_length=64)
    mx.random.seed(0)
    encoder = arch.build(dropout=0.0)
    encoder.initialize(mx.init.Normal(0.05))
    cfg = finetune.FinetuneConfig(epochs=epochs, batch_size=8, lr=3e-3, dropout=0.0, max_len=32,
                                  max_len_passage=48, pooling="mean", warmup_fraction=0.05)
    return finetune.TaskModel(task, encoder, vocab, arch.hidden_size, cfg)


def sentence(rng, marker):
    words = list(rng.choice(WORDS, 4))
    words.insert(rng.randint(0, 5), marker)
    return " ".join(words)


def make(task, rng, n):
    """Instances of the task's shape whose label is plain from one marker word."""
    out = []
    for i in range(n):
        y = int(rng.randint(2))
        marker = ("good", "bad")[y]
        if task.shape in ("single",):
            inst = {"text_a": sentence(rng, marker), "label": y}
        elif task.shape in ("pair", "wsc"):
            inst = {"text_a": sentence(rng, "the"), "text_b": sentence(rng, marker), "label": y}
        elif task.shape == "wic":
            inst = {"text_a": sentence(rng, marker), "text_b": sentence(rng, "the"), "label": y,
                    "fields": {"word": "the"}}
        elif task.shape == "regression":
            inst = {"text_a": sentence(rng, "the"), "text_b": sentence(rng, marker), "label": 4.0 - 3.0 * y}
        elif task.shape == "multirc":
            inst = {"text_a": sentence(rng, "the"), "text_b": sentence(rng, marker), "label": y, "group": i // 2}
        elif task.shape == "choice":
            k = 4 if task.suite == "race" else 2
            gold = int(rng.randint(k))
            choices = [sentence(rng, "bad") for _ in range(k)]
            choices[gold] = sentence(rng, "good")
            inst = {"text_a": sentence(rng, "the"), "question": "cause", "choices": choices, "label": gold}
        elif task.shape == "record":
            names = list(rng.permutation(["paris", "london", "berlin"]))     # gold's position varies
            inst = {"text_a": sentence(rng, "the") + " paris is good", "query": "the good city is @placeholder",
                    "candidates": names, "answers": ["paris"]}
        inst["id"] = i
        out.append(inst)
    return out


SHAPES = {"single": "SST-2", "pair": "RTE", "regression": "STS-B", "choice": "COPA", "multirc": "MultiRC",
          "record": "ReCoRD", "wic": "WiC", "wsc": "WSC", "race": "RACE-middle"}
CHANCE = {"SST-2": 0.5, "RTE": 0.5, "STS-B": 0.0, "COPA": 0.5, "MultiRC": 0.5, "ReCoRD": 1 / 3, "WiC": 0.5,
          "WSC": 0.5, "RACE-middle": 0.25}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_each_shape_trains_and_beats_chance(vocab, shape):
    name = SHAPES[shape]
    task = tasks.TASKS[name]
    rng = np.random.RandomState(0)
    train, test = make(task, rng, 64), make(task, rng, 40)
    model = tiny_model(task, vocab)
    losses = model.fit(train)
    assert losses[-1] < losses[0]
    scores = M.score(task, test, model.predict(test))
    if shape == "regression":
        assert scores["pearson"] > 0.5
    elif shape == "record":
        assert scores["record_em"] > CHANCE[name] + 0.2
    elif shape == "multirc":
        assert M.acc([i["label"] for i in test], model.predict(test)) > 0.7
    else:
        assert scores["acc"] > CHANCE[name] + 0.2


def test_row_texts_follow_the_shape():
    race = tasks.TASKS["RACE-high"]
    inst = {"text_a": "article", "question": "why?", "choices": ["a", "b", "c", "d"], "label": 1}
    assert finetune.row_texts(race, inst) == [("article", f"why? {c}") for c in "abcd"]
    record = tasks.TASKS["ReCoRD"]
    inst = {"text_a": "p", "query": "@placeholder won", "candidates": ["X", "Y"], "answers": ["Y"]}
    assert finetune.row_texts(record, inst) == [("p", "X won"), ("p", "Y won")]
    assert finetune.gold_rows(record, inst) == [1]
