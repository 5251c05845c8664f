"""A killed fine-tuning (or Agora) run resumes from its last checkpoint and ends where an
uninterrupted run ends: the same parameters, bit for bit, and the same epoch losses."""
import json

import numpy as np
import pytest

from bort import agora, checkpoint, tasks
from bort.finetune import AgoraConfig
from test_finetune import make, tiny_model

TASK = tasks.TASKS["RTE"]


@pytest.fixture(scope="module")
def vocab():
    from bort import hf_checkpoint, teacher
    return hf_checkpoint.load_wordpiece_vocab(teacher.minilm_dir() / "vocab.txt")


class Killed(Exception):
    """Stands for the process being killed."""


def kill_after(batches):
    """A progress callback that "kills" the run on batch `batches` + 1."""
    seen = []

    def progress(n):
        seen.append(n)
        if len(seen) > batches:
            raise Killed
    return progress


def parameters(model):
    """Every parameter on every context, by structural name."""
    return {(name, str(ctx)): p.data(ctx).asnumpy() for name, p in model.net._collect_params_with_prefix().items()
            for ctx in p.list_ctx()}


def same(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("frozen,contexts", [({}, 1), ({"freeze_embeddings": True, "frozen_layers": 1}, 1),
                                             ({"freeze_embeddings": True, "frozen_layers": 1}, 2)])
def test_a_run_killed_after_epoch_one_resumes_to_the_same_weights(vocab, tmp_path, frozen, contexts):
    import mxnet as mx

    def build():
        return tiny_model(TASK, vocab, epochs=3, ctx=[mx.cpu(k) for k in range(contexts)], **frozen)
    train = make(TASK, np.random.RandomState(0), 24)            # 3 steps per epoch
    reference = build()
    losses = reference.fit(train, checkpoint_dir=tmp_path / "uninterrupted")
    folder = tmp_path / "killed"
    with pytest.raises(Killed):
        build().fit(train, kill_after(4), checkpoint_dir=folder)
    assert json.loads((folder / "state.json").read_text())["epoch"] == 1
    resumed, batches = build(), []
    assert resumed.fit(train, batches.append, checkpoint_dir=folder) == losses
    assert len(batches) == 6                                    # epochs 2 and 3 only
    assert same(parameters(resumed), parameters(reference))


def test_a_search_candidate_stopped_at_its_rung_continues_to_the_uninterrupted_run(vocab, tmp_path):
    """The settings search (bort.finetune.runs) scores a candidate after `until` epochs of the full
    schedule; the chosen one then resumes to the end and is the run an uninterrupted fit gives."""
    train = make(TASK, np.random.RandomState(0), 24)
    whole = tiny_model(TASK, vocab, epochs=3, dropout=0.1)
    losses = whole.fit(train)
    batches = []
    assert tiny_model(TASK, vocab, epochs=3, dropout=0.1).fit(train, batches.append, checkpoint_dir=tmp_path,
                                                              until=2) == losses[:2]
    assert len(batches) == 6 and json.loads((tmp_path / "state.json").read_text())["epoch"] == 2
    resumed = tiny_model(TASK, vocab, epochs=3, dropout=0.1)
    assert resumed.fit(train, batches.append, checkpoint_dir=tmp_path) == losses and len(batches) == 9
    assert same(parameters(resumed), parameters(whole))


def test_a_checkpoint_of_other_settings_is_not_resumed(vocab, tmp_path):
    train = make(TASK, np.random.RandomState(0), 24)
    with pytest.raises(Killed):
        tiny_model(TASK, vocab, epochs=3).fit(train, kill_after(4), checkpoint_dir=tmp_path)
    fresh = tiny_model(TASK, vocab, epochs=3, lr=1e-3)
    other = tiny_model(TASK, vocab, epochs=3, lr=1e-3)
    assert fresh.fit(train, checkpoint_dir=tmp_path) == other.fit(train)
    assert same(parameters(fresh), parameters(other))


def test_with_dropout_a_resumed_run_equals_an_uninterrupted_one(vocab, tmp_path):
    """MXNet cannot save its RNG state, so every epoch reseeds it from (seed, epoch): a resumed
    run draws the dropout masks an uninterrupted one draws."""
    train = make(TASK, np.random.RandomState(0), 24)
    whole = tiny_model(TASK, vocab, epochs=3, dropout=0.1)
    losses = whole.fit(train)
    with pytest.raises(Killed):
        tiny_model(TASK, vocab, epochs=3, dropout=0.1).fit(train, kill_after(4), checkpoint_dir=tmp_path)
    resumed = tiny_model(TASK, vocab, epochs=3, dropout=0.1)
    assert resumed.fit(train, checkpoint_dir=tmp_path) == losses
    assert same(parameters(resumed), parameters(whole))


class Bar:
    """The parts of a tqdm bar fit uses, recording where it starts."""

    def __init__(self):
        self.n = self.last_print_n = 0
        self.total, self.starts, self.postfix = None, [], []

    def reset(self, total=None):
        self.total, self.n = total, 0

    def refresh(self):
        self.starts.append(self.n)

    def update(self, n):
        self.n += n

    def set_postfix_str(self, text):
        self.postfix.append(text)


def test_the_progress_bar_counts_all_batches_and_a_resumed_run_starts_where_it_stopped(vocab, tmp_path):
    train = make(TASK, np.random.RandomState(0), 24)
    with pytest.raises(Killed):
        tiny_model(TASK, vocab, epochs=3).fit(train, kill_after(4), checkpoint_dir=tmp_path)
    bar = Bar()
    tiny_model(TASK, vocab, epochs=3).fit(train, bar, checkpoint_dir=tmp_path)
    assert (bar.total, bar.starts, bar.n) == (9, [3], 9)
    assert bar.postfix == ["epoch 2/3", "epoch 3/3"]


def test_clear_empties_the_folder_and_keeps_it(tmp_path):
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "state.json").write_text("{}")
    checkpoint.clear(tmp_path / "ckpt")
    assert (tmp_path / "ckpt").is_dir() and not list((tmp_path / "ckpt").iterdir())
    checkpoint.clear(None)


class Labeler:
    """The stronger model: the marker word decides. Records how many instances each call labels."""

    def __init__(self):
        self.calls = []

    def predict(self, instances):
        self.calls.append(len(instances))
        return [int("bad" in i["text_b"].split()) for i in instances]


def embed(texts):
    """A fixed, deterministic embedding: letter counts."""
    out = np.array([[t.count(c) for c in "abcdefghijklmnopqrstuvwxyz"] for t in texts], np.float32) + 1e-3
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_agora_killed_in_round_two_resumes_to_the_same_student(vocab, tmp_path):
    rng = np.random.RandomState(0)
    train, dev = make(TASK, rng, 16), make(TASK, rng, 12)
    for k, inst in enumerate(dev):
        inst["id"] = f"dev-{k}"
    texts = sorted({i[key] for i in make(TASK, rng, 40) for key in ("text_a", "text_b")})
    pool = agora.Pool(texts, embed(texts))
    cfg = AgoraConfig(rounds=2, round_epochs=1, neighbours=1, replay=True, max_new_per_round=8)

    def student():
        model = tiny_model(TASK, vocab, epochs=1, freeze_embeddings=True, frozen_layers=1)
        model.fit(train)                                          # Agora's step 1
        return model

    def score(instances, preds):
        return float(np.mean([p == i["label"] for p, i in zip(preds, instances)]))

    def run(model, folder, progress=None, labeler=None):
        return agora.run(TASK, model, train, dev, labeler or Labeler(), pool, embed, cfg, set(), score, progress,
                         folder)

    labeler = Labeler()
    reference, records = run(student(), tmp_path / "uninterrupted", labeler=labeler)
    assert len(records) == 2 and all(r["points_valid"] > 0 for r in records)
    assert [len(r["theta"]) for r in records] == [2, 1]                  # Θ pruned after round 1
    folder = tmp_path / "killed"
    steps_round_one = 2 * -(-(len(train) + records[0]["points_valid"]) // 8)    # both θ of Θ
    with pytest.raises(Killed):
        run(student(), folder, kill_after(steps_round_one + 1))
    assert json.loads((folder / "state.json").read_text())["round"] == 1
    batches, resumed_labeler = [], Labeler()
    resumed, resumed_records = run(student(), folder, batches.append, resumed_labeler)
    kept = records[0]["points_added"] + records[1]["points_valid"]      # replay: an accepted round's points
    assert len(batches) == -(-(len(train) + kept) // 8)                  # round 2 only, its one θ
    assert resumed_labeler.calls == labeler.calls[1:]            # what round 1 labelled is not labelled again
    assert resumed_records == records
    assert same(parameters(resumed), parameters(reference))


def test_an_agora_checkpoint_keeps_what_the_labeler_and_the_embedder_said(vocab, tmp_path):
    """A resumed run neither labels nor embeds again what an earlier round did (and gets the very
    values: a labeler's output may depend on the batch it came in)."""
    model = tiny_model(TASK, vocab, epochs=1)
    label, embedded = agora.Memo(agora.judge(Labeler()), TASK.shape.inputs), agora.Memo(embed)
    points = make(TASK, np.random.RandomState(1), 3)
    label(points)
    embedded([p["text_a"] for p in points])
    marks = [(TASK.shape.inputs(points[0]), TASK.shape.inputs(points[1]))]
    state = {"records": [], "points": [points], "marks": marks, "alive": [1]}
    agora.save(tmp_path, model, state, embedded, label, "id")
    label2, embedded2 = agora.Memo(None, TASK.shape.inputs), agora.Memo(None)
    cfg = AgoraConfig(rounds=2, round_epochs=1, neighbours=1, replay=True, max_new_per_round=8)
    assert agora.resume(tmp_path, model, [], cfg, "id", embedded2, label2) == state
    assert label2.known == label.known
    assert embedded2.known.keys() == embedded.known.keys()
    assert all(np.array_equal(embedded2.known[k], embedded.known[k]) for k in embedded.known)
    assert agora.resume(tmp_path, model, [], cfg, "other settings", embedded2, label2) is None


def test_a_checkpoint_rng_state_is_read_as_a_literal_never_run():
    """A checkpoint on a shared filesystem is another machine's file: its Python RNG state is parsed
    as a literal, so code in it is refused, not executed."""
    import random
    random.seed(1)
    state = checkpoint.rng_state()
    expected = random.random()
    checkpoint.restore_rng(state)
    assert random.random() == expected
    with pytest.raises(ValueError):
        checkpoint.restore_rng(dict(state, python="__import__('os').getcwd()"))
