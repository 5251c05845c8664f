import numpy as np
import pytest

from bort import distillation as kd
from bort.arch import Arch


def test_layer_map_is_even_and_ends_at_the_top():
    assert kd.layer_map(2, 6) == [2, 5]
    assert kd.layer_map(3, 6) == [1, 3, 5]
    assert kd.layer_map(6, 6) == list(range(6))
    assert kd.layer_map(1, 24) == [23]


def test_full_size_student_from_teacher_is_the_teacher(tiny_teacher):
    teacher, arch = tiny_teacher
    student = kd.build_student(arch, kd.param_arrays(teacher))
    ids = np.random.RandomState(0).randint(5, 60, (2, 8)).astype(np.float32)
    np.testing.assert_allclose(kd.forward_hidden(student, ids).asnumpy(),
                               kd.forward_hidden(teacher, ids).asnumpy(), atol=1e-6)


def test_short_distillation_lowers_the_loss(tiny_teacher):
    teacher, arch = tiny_teacher
    ids = np.random.RandomState(1).randint(5, 60, (64, 8)).astype(np.float32)
    targets = kd.teacher_targets(teacher, ids)
    scale = kd.target_scale(targets)
    student = kd.build_student(Arch(1, 2, 16, 32, vocab_size=60, max_length=16), kd.param_arrays(teacher))
    proj = kd.build_projection(16, 32)
    before = kd.evaluate(student, proj, ids, targets, scale)
    kd.fit_projection(proj, kd.batched(lambda x: kd.forward_hidden(student, x), ids), targets)
    fitted = kd.evaluate(student, proj, ids, targets, scale)
    losses = kd.kd_steps(student, proj, ids, targets, scale, 40, 16, 3e-3, 0)
    after = kd.evaluate(student, proj, ids, targets, scale)
    assert fitted < before and after < fitted and losses[-1] < losses[0]


def test_masking_rate_and_specials(tiny_teacher):
    import gluonnlp as nlp
    vocab = nlp.vocab.BERTVocab(nlp.data.count_tokens([f"w{i}" for i in range(200)]))
    ids = np.full((50, 40), vocab["w7"], np.int32)
    ids[:, 0], ids[:, -1] = vocab[vocab.cls_token], vocab[vocab.sep_token]
    masked, chosen = kd.mask_tokens(ids, vocab, np.random.RandomState(0))
    assert not chosen[:, 0].any() and not chosen[:, -1].any()
    assert 0.12 < chosen.mean() / (38 / 40) < 0.18
    assert (masked[chosen] == vocab[vocab.mask_token]).mean() == pytest.approx(0.8, abs=0.06)
