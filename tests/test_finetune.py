"""Each task shape trains on a tiny, plainly learnable slice and beats chance."""
import numpy as np
import pytest

from bort import hf_checkpoint, metrics as M, tasks, teacher
from bort.arch import Arch
from bort.errors import BortError
from bort.finetune import FinetuneConfig
from bort.finetune.model import TaskModel

WORDS = ["apple", "river", "music", "garden", "window", "teacher", "winter", "market", "letter", "bridge"]


@pytest.fixture(scope="module")
def vocab():
    return hf_checkpoint.load_wordpiece_vocab(teacher.minilm_dir() / "vocab.txt")


def tiny_model(task, vocab, epochs=15, depth=1, ctx=None, **frozen):
    import mxnet as mx
    arch = Arch(depth, 2, 32, 64, vocab_size=len(vocab), max_length=64)
    mx.random.seed(0)
    encoder = arch.build(dropout=0.0)
    encoder.initialize(mx.init.Normal(0.05))
    encoder(mx.nd.ones((1, 4)), mx.nd.zeros((1, 4)), mx.nd.array([4]))   # resolve deferred shapes
    return TaskModel(task, encoder, vocab, arch, config(epochs=epochs, **frozen), ctx)


def config(**changes):
    settings = dict(epochs=15, batch_size=8, lr=3e-3, weight_decay=0.01, warmup_fraction=0.05, dropout=0.0,
                    max_len=32, max_len_passage=48, max_train=0, pooling="mean", freeze_embeddings=False,
                    frozen_layers=0, frozen_runtime="mxnet")
    return FinetuneConfig(**dict(settings, **changes))


def sentence(rng, marker):
    words = list(rng.choice(WORDS, 4))
    words.insert(rng.randint(0, 5), marker)
    return " ".join(words)


def make(task, rng, n):
    """Instances of the task's shape whose label is plain from one marker word."""
    out = []
    shape = task.shape.name
    for i in range(n):
        y = int(rng.randint(2))
        marker = ("good", "bad")[y]
        if shape == "single":
            inst = {"text_a": sentence(rng, marker), "label": y}
        elif shape in ("pair", "wsc"):
            inst = {"text_a": sentence(rng, "the"), "text_b": sentence(rng, marker), "label": y}
        elif shape == "wic":
            inst = {"text_a": sentence(rng, marker), "text_b": sentence(rng, "the"), "label": y,
                    "fields": {"word": "the"}}
        elif shape == "regression":
            inst = {"text_a": sentence(rng, "the"), "text_b": sentence(rng, marker), "label": 4.0 - 3.0 * y}
        elif shape == "multirc":
            inst = {"text_a": sentence(rng, "the"), "text_b": sentence(rng, marker), "label": y, "group": i // 2}
        elif shape in ("copa", "race"):
            k = 4 if shape == "race" else 2
            gold = int(rng.randint(k))
            choices = [sentence(rng, "bad") for _ in range(k)]
            choices[gold] = sentence(rng, "good")
            inst = {"text_a": sentence(rng, "the"), "question": "cause", "choices": choices, "label": gold}
        elif shape == "record":
            names = list(rng.permutation(["paris", "london", "berlin"]))     # gold's position varies
            inst = {"text_a": sentence(rng, "the") + " paris is good", "query": "the good city is @placeholder",
                    "candidates": names, "answers": ["paris"]}
        inst["id"] = i
        out.append(inst)
    return out


SHAPES = {"single": "SST-2", "pair": "RTE", "regression": "STS-B", "copa": "COPA", "multirc": "MultiRC",
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


def test_rows_follow_the_shape():
    race = tasks.TASKS["RACE-high"].shape
    inst = {"text_a": "article", "question": "why?", "choices": ["a", "b", "c", "d"], "label": 1}
    assert race.rows(inst) == [("article", f"why? {c}") for c in "abcd"]
    copa = tasks.TASKS["COPA"].shape
    inst = {"text_a": "It rained.", "question": "effect", "choices": ["a", "b"], "label": 0}
    assert copa.rows(inst) == [("It rained. what was the effect ?", c) for c in "ab"]
    record = tasks.TASKS["ReCoRD"].shape
    inst = {"text_a": "p", "query": "@placeholder won", "candidates": ["X", "Y"], "answers": ["Y"]}
    assert record.rows(inst) == [("p", "X won"), ("p", "Y won")] == record.floor_texts(inst)
    assert record.gold_rows(inst) == [1] and record.floor_targets(inst) == [0, 1]
    wic = tasks.TASKS["WiC"].shape
    inst = {"text_a": "a bank", "text_b": "the bank", "fields": {"word": "bank"}, "label": 0}
    assert wic.rows(inst) == [("bank : a bank", "the bank")] and wic.inputs(inst)[0] == "bank"


def used(net):
    """The parameters a forward pass touches (the encoder's pooler is not used by the head)."""
    return {k: v for k, v in net.collect_params().items() if "pooler" not in k}


@pytest.mark.parametrize("frozen_layers,runtime", [(0, "mxnet"), (1, "mxnet"), (2, "mxnet"),
                                                   (1, "onnxruntime"), (2, "onnxruntime")])
def test_frozen_lower_part_gives_the_full_forward(vocab, frozen_layers, runtime):
    """Cached lower states (from MXNet or ONNX Runtime) + the trainable top compute what the
    whole network does."""
    task = tasks.TASKS["RTE"]
    rng = np.random.RandomState(1)
    data = make(task, rng, 12)
    full = tiny_model(task, vocab, depth=2)
    split = tiny_model(task, vocab, depth=2, freeze_embeddings=True, frozen_layers=frozen_layers,
                       frozen_runtime=runtime)
    a, _ = full.scores(data)
    split.scores(data)                                    # resolves the head's deferred shapes
    for mine, theirs in zip(used(split.net).values(), used(full.net).values()):
        mine.set_data(theirs.data())
    b, _ = split.scores(data)
    assert np.abs(a.asnumpy() - b.asnumpy()).max() < 1e-5


def test_frozen_parameters_stay_fixed_and_the_top_learns(vocab):
    task = tasks.TASKS["SST-2"]
    rng = np.random.RandomState(2)
    train, test = make(task, rng, 64), make(task, rng, 40)
    model = tiny_model(task, vocab, depth=2, freeze_embeddings=True, frozen_layers=1)
    model.predict(test)                                   # resolves deferred shapes
    before = {k: v.data().asnumpy().copy() for k, v in used(model.net).items()}
    model.fit(train)
    after = {k: v.data().asnumpy() for k, v in used(model.net).items()}
    changed = {k for k in before if not np.array_equal(before[k], after[k])}
    assert not any("word_embed" in k or "transformer0_" in k or "position_weight" in k for k in changed)
    assert any("transformer1_" in k for k in changed) and any("dense" in k for k in changed)
    assert M.score(task, test, model.predict(test))["acc"] > 0.7


def test_frozen_layers_are_checked(vocab):
    from bort.errors import BortError
    task = tasks.TASKS["SST-2"]
    with pytest.raises(BortError, match="key frozen_layers: > 0 needs freeze_embeddings"):
        config(frozen_layers=1)
    with pytest.raises(BortError, match=r"expected 0\.\.1"):
        tiny_model(task, vocab, freeze_embeddings=True, frozen_layers=2)
    with pytest.raises(BortError, match="key frozen_runtime: expected one of 'mxnet', 'onnxruntime', got 'tvm'"):
        config(freeze_embeddings=True, frozen_layers=1, frozen_runtime="tvm")


def test_int8_task_model_predicts_like_fp32(vocab):
    """bort.quantize on a fine-tuned task model: same predictions on nearly every instance."""
    task = tasks.TASKS["SST-2"]
    rng = np.random.RandomState(3)
    train, test = make(task, rng, 64), make(task, rng, 40)
    model = tiny_model(task, vocab, freeze_embeddings=True)
    model.fit(train)
    fp32 = model.predict(test)
    model.quantize(train, batch_size=16)
    assert model.frozen is None and "quantize_v2" in model.net._cached_graph[1].tojson()
    assert np.mean(np.array(model.predict(test)) == np.array(fp32)) >= 0.9


def test_int8_calibrates_on_fewer_rows_than_a_batch_and_none_is_one_line(vocab):
    task = tasks.TASKS["SST-2"]
    train = make(task, np.random.RandomState(3), 12)
    model = tiny_model(task, vocab, freeze_embeddings=True)
    model.quantize(train[:5], batch_size=32)                    # one batch of 5, not none
    assert len(model.predict(train)) == 12
    with pytest.raises(BortError, match="SST-2: int8 calibration needs at least one training instance"):
        tiny_model(task, vocab, freeze_embeddings=True).quantize([], batch_size=32)
