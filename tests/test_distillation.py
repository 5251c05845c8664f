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
    student = kd.build_student(arch, kd.param_arrays(teacher), teacher_heads=arch.num_heads)
    ids = np.random.RandomState(0).randint(5, 60, (2, 8)).astype(np.float32)
    np.testing.assert_allclose(kd.forward_hidden(student, ids).asnumpy(),
                               kd.forward_hidden(teacher, ids).asnumpy(), atol=1e-6)


def test_head_index_maps_student_head_k_to_teacher_head_k():
    # 2 heads of 16 from 4 teacher heads of 8: each keeps its teacher head's 8, pads 8
    assert kd.head_index(2, 32, 4, 32).tolist() == [*range(0, 8), *[-1] * 8, *range(8, 16), *[-1] * 8]
    # 4 heads of 4 from 4 heads of 8: each is its teacher head's first half
    assert kd.head_index(4, 16, 4, 32).tolist() == [0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27]
    with pytest.raises(ValueError, match="more than the teacher's 4"):
        kd.head_index(8, 32, 4, 32)


@pytest.mark.parametrize("heads, hidden", [(2, 32), (4, 16)])
def test_head_aware_init_copies_each_head_into_place(tiny_teacher, heads, hidden):
    """Value rows, query rows (rescaled by sqrt(d / d_T)) and the output projection's input
    columns of student head k hold teacher head k's first min(d, d_T) coordinates."""
    teacher, arch = tiny_teacher
    t = kd.param_arrays(teacher)
    student = kd.build_student(Arch(1, heads, hidden, 64, vocab_size=60, max_length=16), t, teacher_heads=4)
    s = kd.param_arrays(student)
    top = f"encoder.transformer_cells.{kd.layer_map(1, arch.depth)[0]}."
    d, d_t = hidden // heads, 8
    keep = min(d, d_t)
    for k in range(heads):
        mine, theirs = slice(k * d, k * d + keep), slice(k * d_t, k * d_t + keep)
        cell = "encoder.transformer_cells.0."
        np.testing.assert_array_equal(s[cell + "attention_cell.proj_value.weight"][mine],
                                      t[top + "attention_cell.proj_value.weight"][theirs, :hidden])
        np.testing.assert_allclose(s[cell + "attention_cell.proj_query.weight"][mine],
                                   t[top + "attention_cell.proj_query.weight"][theirs, :hidden] * np.sqrt(d / d_t), rtol=1e-6)
        np.testing.assert_allclose(s[cell + "attention_cell.proj_query.bias"][mine],
                                   t[top + "attention_cell.proj_query.bias"][theirs] * np.sqrt(d / d_t), rtol=1e-6)
        np.testing.assert_array_equal(s[cell + "attention_cell.proj_key.bias"][mine], t[top + "attention_cell.proj_key.bias"][theirs])
        np.testing.assert_array_equal(s[cell + "proj.weight"][:, mine], t[top + "proj.weight"][:hidden, theirs])
    np.testing.assert_array_equal(s["encoder.transformer_cells.0.proj.bias"], t[top + "proj.bias"][:hidden])


def _attention_scores(model, ids, heads, layer=0):
    """A layer's attention weights per head, (batch, heads, L, L), on the embedding output."""
    import mxnet as mx
    cell = model.encoder.transformer_cells[layer]
    words = model.word_embed(mx.nd.array(ids)) + model.token_type_embed(mx.nd.zeros(ids.shape))
    x = model.encoder.layer_norm(words + model.encoder.position_weight.data()[:ids.shape[1]].expand_dims(0))
    _, weights = cell.attention_cell(x.transpose((1, 0, 2)), None)
    return weights.asnumpy().reshape(ids.shape[0], heads, ids.shape[1], ids.shape[1])


def test_head_aware_init_keeps_the_teachers_heads(tiny_teacher):
    """A student with 2 wider heads (16 = 2 × the teacher's 8) at the teacher's H attends exactly
    like teacher heads 0 and 1: the padding starts random but the queries are rescaled, so
    the kept coordinates give the teacher's scores (up to the small random padding)."""
    teacher, arch = tiny_teacher
    student = kd.build_student(Arch(1, 2, 32, 64, vocab_size=60, max_length=16), kd.param_arrays(teacher),
                               teacher_heads=arch.num_heads)
    ids = np.random.RandomState(3).randint(5, 60, (2, 8)).astype(np.float32)
    top = kd.layer_map(1, arch.depth)[0]                  # the student's one layer is the teacher's last
    mine, theirs = _attention_scores(student, ids, 2), _attention_scores(teacher, ids, 4, top)[:, :2]
    assert np.abs(mine - theirs).max() < 0.05
    sliced = kd.build_student(Arch(1, 2, 32, 64, vocab_size=60, max_length=16), kd.param_arrays(teacher),
                              teacher_heads=2)            # plain slicing: heads of 16 = two teacher heads fused
    assert np.abs(_attention_scores(sliced, ids, 2) - theirs).max() > 5 * np.abs(mine - theirs).max()


def test_short_distillation_lowers_the_loss(tiny_teacher):
    teacher, arch = tiny_teacher
    ids = np.random.RandomState(1).randint(5, 60, (64, 8)).astype(np.float32)
    targets = kd.teacher_targets(teacher, ids)
    scale = kd.target_scale(targets)
    student = kd.build_student(Arch(1, 2, 16, 32, vocab_size=60, max_length=16), kd.param_arrays(teacher),
                               teacher_heads=arch.num_heads)
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
