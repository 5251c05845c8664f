import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from bort import hf_checkpoint, teacher
from bort.errors import BortError


@pytest.fixture(scope="module")
def converted():
    return hf_checkpoint.convert_hf_bert(teacher.minilm_dir())


def test_converted_teacher_keeps_sentence_similarity(converted):
    model, vocab, arch = converted
    assert arch.tuple == (6, 12, 384, 1536) and len(vocab) == 30522
    texts = ["A man is eating food.", "A man is eating a piece of bread.",
             "The new movie is awesome.", "The new film is so great.",
             "The stock market fell sharply today."]
    e = teacher.sentence_embeddings(model, vocab, texts)
    cos = e @ e.T
    assert cos[0, 1] == pytest.approx(0.76, abs=0.02)
    assert cos[2, 3] == pytest.approx(0.88, abs=0.02)
    for a, b in [(0, 2), (1, 3), (0, 4), (2, 4)]:
        assert abs(cos[a, b]) < 0.1


def test_saved_teacher_round_trips(converted, tmp_path):
    model, vocab, arch = converted
    teacher.save_model(model, vocab, arch, tmp_path / "t")
    m2, v2, a2 = teacher.load_model(tmp_path / "t")
    texts = ["A dog runs in the park."]
    assert a2 == arch and len(v2) == len(vocab)
    np.testing.assert_allclose(teacher.sentence_embeddings(model, vocab, texts),
                               teacher.sentence_embeddings(m2, v2, texts), atol=1e-6)


def _broken_copy(tmp_path, mutate):
    src = teacher.minilm_dir()
    dst = tmp_path / "ckpt"
    dst.mkdir()
    for name in ("config.json", "vocab.txt"):
        shutil.copy(src / name, dst / name)
    tensors = load_file(str(src / "model.safetensors"))
    mutate(tensors)
    save_file(tensors, str(dst / "model.safetensors"))
    return dst


def test_missing_tensor_is_named(tmp_path):
    dst = _broken_copy(tmp_path, lambda t: t.pop("encoder.layer.3.output.dense.weight"))
    with pytest.raises(BortError, match=r"missing tensor 'encoder.layer.3.output.dense.weight'"):
        hf_checkpoint.convert_hf_bert(dst)


def test_misshaped_tensor_is_named(tmp_path):
    def cut(t):
        t["encoder.layer.0.intermediate.dense.weight"] = t["encoder.layer.0.intermediate.dense.weight"][:100]
    dst = _broken_copy(tmp_path, cut)
    with pytest.raises(BortError, match=r"'encoder.layer.0.intermediate.dense.weight' has shape \(100, 384\); expected \(1536, 384\)"):
        hf_checkpoint.convert_hf_bert(dst)


def test_unknown_zoo_model_is_a_clear_error():
    with pytest.raises(BortError, match="unknown model 'gpt_99'"):
        teacher.zoo_model("gpt_99")
