"""params.yaml `device`: parsing, and several contexts training as one (CI has no GPU: two CPU contexts)."""
import numpy as np
import pytest
import yaml

from bort import device, params, tasks
from bort.errors import BortError
from conftest import ROOT
from test_finetune import make, tiny_model


def contexts(tmp_path, setting):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"device": setting}))
    return device.contexts(path)


@pytest.fixture
def gpus(monkeypatch):
    """Pretend MXNet sees this many GPUs (parsing only: nothing runs on them)."""
    import mxnet as mx

    def set_count(n):
        monkeypatch.setattr(mx.context, "num_gpus", lambda: n)
    return set_count


def test_settings_parse_into_contexts(tmp_path, gpus):
    import mxnet as mx
    gpus(0)
    assert contexts(tmp_path, "cpu") == [mx.cpu(0)]
    assert contexts(tmp_path, "auto") == [mx.cpu(0)]
    assert contexts(tmp_path, ["cpu(0)", "cpu(1)"]) == [mx.cpu(0), mx.cpu(1)]
    assert contexts(tmp_path, "cpu(1)") == [mx.cpu(1)]
    gpus(2)
    assert contexts(tmp_path, "auto") == [mx.gpu(0), mx.gpu(1)]
    assert contexts(tmp_path, "gpu") == [mx.gpu(0), mx.gpu(1)]
    assert contexts(tmp_path, ["gpu(1)"]) == [mx.gpu(1)]
    assert device.label([mx.gpu(0), mx.gpu(1)]) == "gpu(0),gpu(1)"


@pytest.mark.parametrize("setting,gpu_count,message", [
    ("tpu", 0, "key device: expected auto, cpu, gpu, or a list of contexts like [cpu(0), cpu(1)] / "
               "[gpu(0), gpu(1)], got 'tpu'"),
    (["cpu(0)", "cpu(0)"], 0, "key device: a context is listed twice in ['cpu(0)', 'cpu(0)']"),
    (["cpu(0)", "gpu(0)"], 1, "key device: expected contexts of one kind (all cpu or all gpu)"),
    ([], 0, "key device: expected auto, cpu, gpu, or a list of contexts"),
    ("gpu", 0, "key device: gpu asked for, but MXNet sees no GPU; expected cpu or auto on this machine"),
    (["gpu(0)", "gpu(1)"], 1, "key device: gpu(1) asked for, but MXNet sees 1 GPU(s)"),
    (3, 0, "key device: expected str or a list of str, got int 3"),
])
def test_bad_settings_are_one_line_naming_the_key(tmp_path, gpus, setting, gpu_count, message):
    gpus(gpu_count)
    with pytest.raises(BortError) as caught:
        contexts(tmp_path, setting)
    text = str(caught.value)
    assert text.startswith(f"{tmp_path / 'params.yaml'}: ") and message in text and "\n" not in text


def test_the_embedded_default_is_one_cpu_context():
    import mxnet as mx
    assert params.load(ROOT / "params.yaml")["device"] == "cpu"
    assert device.contexts(ROOT / "params.yaml") == [mx.cpu(0)]
    assert device.is_default([mx.cpu(0)]) and not device.is_default([mx.cpu(0), mx.cpu(1)])
    assert not device.mixed_precision([mx.cpu(0), mx.cpu(1)])         # AMP is for GPUs only


def test_shards_keep_order_and_weights_sum_to_one():
    parts = device.shards(list(range(7)), 3)
    assert parts == [[0, 1, 2], [3, 4], [5, 6]]
    assert device.weights(parts) == pytest.approx([3 / 7, 2 / 7, 2 / 7])
    assert device.shards([0], 2) == [[0], []]


def parameters(model, ctx):
    """The model's parameters on `ctx`, by structural name (the same across two builds)."""
    return {name: p.data(ctx).asnumpy() for name, p in model.net._collect_params_with_prefix().items()}


@pytest.mark.parametrize("name,size,frozen", [
    ("RTE", 19, {}),                                              # 3 steps, the last of 3 instances
    ("RACE-middle", 9, {}),                                       # 4 rows per instance, grouped per shard
    ("RTE", 19, {"freeze_embeddings": True, "frozen_layers": 1}),  # the cached frozen part
])
def test_two_cpu_contexts_train_like_one(vocab, name, size, frozen):
    """Data-parallel over [cpu(0), cpu(1)]: the same losses and updated parameters as one context
    to 1e-5, and both contexts' copies equal -- including a last batch with fewer instances than
    contexts."""
    import mxnet as mx
    task = tasks.TASKS[name]
    train = make(task, np.random.RandomState(0), size)
    one = tiny_model(task, vocab, epochs=1, **frozen)
    two = tiny_model(task, vocab, epochs=1, ctx=[mx.cpu(0), mx.cpu(1)], **frozen)
    assert one.fit(train) == pytest.approx(two.fit(train), abs=1e-5)
    reference, first, second = parameters(one, mx.cpu(0)), parameters(two, mx.cpu(0)), parameters(two, mx.cpu(1))
    # RACE scores each option with one output and takes a softmax over an instance's options, which
    # no shift changes: the output bias's true gradient is 0, so its float noise (~1e-8) is all Adam
    # sees, and Adam turns noise into steps of ~lr/100 -- whichever the context count
    compared = [k for k in reference if not (name == "RACE-middle" and k == "head.3.bias")]
    assert max(float(np.abs(reference[k] - first[k]).max()) for k in compared) < 1e-5
    assert all(np.array_equal(first[k], second[k]) for k in first)
    assert one.predict(train) == two.predict(train)


@pytest.fixture(scope="module")
def vocab():
    from bort import hf_checkpoint, teacher
    return hf_checkpoint.load_wordpiece_vocab(teacher.minilm_dir() / "vocab.txt")


def test_a_model_built_without_contexts_stays_on_cpu0(vocab):
    import mxnet as mx
    model = tiny_model(tasks.TASKS["RTE"], vocab, epochs=1)
    assert model.ctx == [mx.cpu(0)]
    assert all(p.list_ctx() == [mx.cpu(0)] for p in model.net.collect_params().values())
