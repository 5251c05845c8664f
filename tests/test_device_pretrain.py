"""params.yaml `device` in the teacher, extract and pretrain stages: two CPU contexts (CI has no GPU)
give what one context gives -- the pretraining losses and weights, extraction's surrogate error,
the teacher's sentence embeddings -- to 1e-5."""
import dataclasses
import json

import numpy as np
import pytest
import yaml

from bort import device, distillation as kd, hf_checkpoint, pretraining, teacher
from bort.arch import Arch
from bort.errors import BortError
from bort.extraction import bert
from conftest import ROOT, run_module
from test_pretrain import TINY

#: the extraction's settings for the tiny teacher's surrogate error (chunks of 8 tokens)
CONFIG = bert.ExtractConfig(
    eps=0.5, other_eps=[], steps_per_unit_eps=4, learning_rates=[3e-3], seq_len=8,
    space=bert.SpaceConfig([1], [2], [16], [32]), batch_size=7, chunk_len=8, train_chunks=48, fit_chunks=48,
    heldout_chunks=16, seed=0, init="teacher", workers=1)

WORDS = [f"w{i}" for i in range(120)]


@pytest.fixture(scope="module")
def vocab():
    import gluonnlp as nlp
    return nlp.vocab.BERTVocab(nlp.data.count_tokens(WORDS))


def documents(seed: int, count: int):
    rng = np.random.RandomState(seed)
    return [" ".join(rng.choice(WORDS, 40)) for _ in range(count)]


def tiny_teacher(vocab):
    """A random ⟨2, 2, 32, 64⟩ teacher with an MLM head (so both losses can run), on cpu(0)."""
    import mxnet as mx
    arch = Arch(2, 2, 32, 64, vocab_size=len(vocab), max_length=32)
    kd.seed_everything(0)
    model = arch.build(decoder=True)
    model.initialize(mx.init.Normal(0.2))
    kd.run_model(model, np.zeros((1, 4), np.float32))
    return model, arch


def parameters(student, ctx):
    """The student's and its projections' parameters on `ctx`, by block and structural name."""
    return {f"{block}:{name}": p.data(ctx).asnumpy() for block, net in student.blocks().items()
            for name, p in net._collect_params_with_prefix().items()}


def largest_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float(np.abs(a[k] - b[k]).max()) for k in a)


def pretrain_on(ctxs, vocab, tmp_path, **changes):
    """A few pretraining steps of a ⟨2, 2, 16, 32⟩ student on `ctxs` (a fresh teacher each time)."""
    model, arch = tiny_teacher(vocab)
    cfg = pretraining.PretrainConfig(**{**TINY, "steps": 6, "batch_size": 7, "seq_len": 16, "checkpoint_every": 3,
                                        "train_chunks": 24, "heldout_chunks": 8, "mask_rate": 0.3, **changes})
    folder = tmp_path / device.label(ctxs).replace(",", "+")
    return pretraining.pretrain(model, arch, vocab, Arch(2, 2, 16, 32, vocab_size=len(vocab), max_length=32),
                                documents(1, 30), documents(2, 10), cfg, folder, progress=False, ctx=ctxs)


@pytest.mark.parametrize("changes", [{}, {"intermediate": True}, {"loss": "mlm_kl", "temperature": 2.0}],
                         ids=["hidden", "hidden-intermediate", "mlm_kl"])
def test_two_cpu_contexts_pretrain_like_one(vocab, tmp_path, changes):
    """Batches of 7 chunks split 4 + 3: the same step losses (and mlm_kl's logged terms), held-out
    losses and weights as one context to 1e-5, and both contexts' copies identical."""
    import mxnet as mx
    one = pretrain_on([mx.cpu(0)], vocab, tmp_path, **changes)
    two = pretrain_on([mx.cpu(0), mx.cpu(1)], vocab, tmp_path, **changes)
    (student_one, metrics_one, history_one, speed_one, _), (student_two, metrics_two, history_two, speed_two, _) = one, two
    assert [sorted(h) for h in history_one] == [sorted(h) for h in history_two]
    for h1, h2 in zip(history_one, history_two):
        for key in h1:
            assert h1[key] == pytest.approx(h2[key], abs=1e-5), (h1["step"], key)
    assert metrics_one["heldout_loss_final"] == pytest.approx(metrics_two["heldout_loss_final"], abs=1e-5)
    assert (speed_one["device"], speed_two["device"]) == ("cpu(0)", "cpu(0),cpu(1)")
    assert student_two.ctxs == [mx.cpu(0), mx.cpu(1)]
    reference, first, second = (parameters(student_one, mx.cpu(0)), parameters(student_two, mx.cpu(0)),
                                parameters(student_two, mx.cpu(1)))
    # an attention key bias adds q·b to every score of a query, which the softmax over keys ignores:
    # its true gradient is 0, its float noise (~1e-9) is all Adam sees, and Adam turns noise into
    # steps of ~lr whichever the context count (mlm_kl: 1.9e-5 apart after 6 steps)
    compared = [k for k in reference if not k.endswith("attention_cell.proj_key.bias")]
    assert largest_difference({k: reference[k] for k in compared}, {k: first[k] for k in compared}) < 1e-5
    assert largest_difference(first, second) == 0.0


def test_horovod_with_several_contexts_is_one_line():
    import mxnet as mx
    cfg = pretraining.PretrainConfig(**{**TINY, "distributed": "horovod"})
    pretraining.check_contexts(cfg, [mx.cpu(0)])
    with pytest.raises(BortError) as caught:
        pretraining.check_contexts(cfg, [mx.cpu(0), mx.cpu(1)])
    text = str(caught.value)
    assert text.startswith("params.yaml: key device: 2 contexts (cpu(0),cpu(1)) with pretrain.distributed 'horovod'")
    assert "\n" not in text


@pytest.fixture(scope="module")
def surrogate_data(tiny_teacher):
    """The tiny teacher's targets for 48 training and 16 held-out chunks."""
    model, _ = tiny_teacher
    rng = np.random.RandomState(1)
    train, held = rng.randint(5, 60, (48, 8)).astype(np.float32), rng.randint(5, 60, (16, 8)).astype(np.float32)
    return model, train, kd.teacher_targets(model, train), held, kd.teacher_targets(model, held)


@pytest.mark.parametrize("batch_size", [7, 1])            # 4 + 3 chunks; 1 + none (weight 0)
def test_two_cpu_contexts_score_a_candidate_like_one(surrogate_data, batch_size):
    """Extraction's surrogate error e(ξ): the candidate's short training data-parallel over
    [cpu(0), cpu(1)] scores what it scores on one context, to 1e-5."""
    import mxnet as mx
    model, train, train_targets, held, held_targets = surrogate_data
    candidate = Arch(1, 2, 16, 32, vocab_size=60, max_length=16)

    def error(ctx):
        data = bert.Data(kd.param_arrays(model), 4, 32, train, train_targets, held, held_targets)
        cfg = dataclasses.replace(CONFIG, batch_size=batch_size)
        return min(bert.surrogate_errors(data, cfg, candidate.tuple, [8], ctx=ctx)[0])
    one, two = error(None), error([mx.cpu(0), mx.cpu(1)])
    assert two == pytest.approx(one, abs=1e-5) and one < 1.0


def test_kd_steps_train_every_context(surrogate_data):
    import mxnet as mx
    model, train, targets, _, _ = surrogate_data
    ctxs = [mx.cpu(0), mx.cpu(1)]
    kd.seed_everything(0)
    student = kd.build_student(Arch(1, 2, 16, 32, vocab_size=60, max_length=16), kd.param_arrays(model), ctx=ctxs,
                               teacher_heads=4)
    proj = kd.build_projection(16, 32, ctx=ctxs)
    assert device.where(student) == device.where(proj) == ctxs
    before = {n: p.data(mx.cpu(1)).asnumpy() for n, p in student.collect_params().items()}
    kd.kd_steps(student, proj, train, targets, kd.target_scale(targets), 3, 7, 3e-3, 0)
    changed = [n for n, p in student.collect_params().items()
               if not np.array_equal(before[n], p.data(mx.cpu(1)).asnumpy())]
    assert changed and all(np.array_equal(p.data(mx.cpu(0)).asnumpy(), p.data(mx.cpu(1)).asnumpy())
                           for p in student.collect_params().values())


@pytest.fixture(scope="module")
def saved_teacher(tmp_path_factory):
    folder = tmp_path_factory.mktemp("teacher") / "teacher"
    teacher.save_model(*hf_checkpoint.convert_hf_bert(teacher.minilm_dir()), folder)
    return folder


def test_a_teacher_on_cpu1_embeds_like_on_cpu0(saved_teacher):
    import mxnet as mx
    texts = ["A man is eating food.", "The new film is so great.", "A dog runs in the park."]
    model, vocab, _ = teacher.load_model(saved_teacher)
    moved, _, _ = teacher.load_model(saved_teacher, ctx=mx.cpu(1))
    assert device.where(model) == [mx.cpu(0)] and device.where(moved) == [mx.cpu(1)]
    reference = teacher.sentence_embeddings(model, vocab, texts)
    np.testing.assert_allclose(teacher.sentence_embeddings(moved, vocab, texts), reference, atol=1e-5, rtol=0)
    device.place(model, [mx.cpu(1)])                       # as a stage places it
    np.testing.assert_allclose(teacher.sentence_embeddings(model, vocab, texts), reference, atol=1e-5, rtol=0)


def test_teacher_stage_on_cpu1_writes_the_committed_probes(tmp_path):
    """pipeline/teacher.py with `device: [cpu(1)]`: the probe cosines of metrics/teacher.json."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"teacher": params["teacher"], "device": ["cpu(1)"]}))
    result = run_module(str(ROOT / "pipeline" / "teacher.py"), "--out", "teacher", "--metrics", "teacher.json",
                        cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "probe embeddings on cpu(1)" in result.stderr
    written = json.loads((tmp_path / "teacher.json").read_text())
    committed = json.loads((ROOT / "metrics" / "teacher.json").read_text())
    assert written.keys() == committed.keys() and written["arch"] == committed["arch"]
    for pair, cosine in committed["probe_cosines"].items():
        assert written["probe_cosines"][pair] == pytest.approx(cosine, abs=1e-5)
