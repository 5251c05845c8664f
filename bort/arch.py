"""An architecture ⟨D, A, H, I⟩, its exact parameter and FLOP counts, and its GluonNLP model.

de Wynter & Perry (arXiv 2010.10499, "Optimal Subarchitecture Extraction for BERT"): a BERT
encoder is described by depth D, attention heads A, hidden size H and intermediate (feed-forward)
size I. GluonNLP 0.10's `BERTEncoder` calls H `units` and I
`hidden_size`; we use the paper's names. The counts here are analytic and must equal the
parameter count of the instantiated GluonNLP `BERTModel` (with pooler, no decoder/classifier):
the FPTAS (bort.extraction) ranks candidates by them without building anything.

Embedding parameters are word + token-type + position embeddings and the embedding layer norm;
the *effective* size is everything else (encoder layers and pooler), the paper's headline size,
because an embedding lookup costs memory, not time.

CLI: `python -m bort.arch show D A H I [--vocab-size V] [--seq-len L] [--json]`.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

from bort.errors import BortError, cli_main

BERT_VOCAB = 30522          # uncased WordPiece (BERT, MiniLM)
ROBERTA_VOCAB = 50265       # cased BPE (RoBERTa; Bort's published size)


@dataclass(frozen=True, order=True)
class Arch:
    """⟨D, A, H, I⟩ plus the sizes that fix the embedding: vocabulary, positions, token types."""
    depth: int
    num_heads: int
    hidden_size: int
    intermediate_size: int
    vocab_size: int = BERT_VOCAB
    max_length: int = 512
    token_types: int = 2

    def __post_init__(self):
        for name in ("depth", "num_heads", "hidden_size", "intermediate_size", "vocab_size",
                     "max_length", "token_types"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise BortError(f"architecture {name}: expected a positive integer, got {value!r}")
        if self.hidden_size % self.num_heads:
            raise BortError(f"architecture ⟨{self.depth}, {self.num_heads}, {self.hidden_size}, "
                            f"{self.intermediate_size}⟩: hidden size {self.hidden_size} is not "
                            f"divisible by {self.num_heads} attention heads")

    @property
    def tuple(self):
        return (self.depth, self.num_heads, self.hidden_size, self.intermediate_size)

    def __str__(self) -> str:
        return "⟨{}, {}, {}, {}⟩".format(*self.tuple)

    def within(self, source: "Arch") -> bool:
        """True when every one of D, A, H, I is at most the source's (a sub-architecture)."""
        return all(mine <= theirs for mine, theirs in zip(self.tuple, source.tuple))

    def check_within(self, source: "Arch") -> "Arch":
        if not self.within(source):
            raise BortError(f"architecture {self} is not a sub-architecture of the source {source}: "
                            "expected every one of D, A, H, I to be at most the source's")
        return self

    # ---- exact counts -------------------------------------------------------------------
    @property
    def embedding_params(self) -> int:
        h = self.hidden_size
        return (self.vocab_size + self.token_types + self.max_length) * h + 2 * h

    @property
    def layer_params(self) -> int:
        """One encoder layer: Q, K, V, output projection, two FFN matrices, two layer norms."""
        h, i = self.hidden_size, self.intermediate_size
        return 4 * (h * h + h) + (h * i + i) + (i * h + h) + 2 * 2 * h

    @property
    def pooler_params(self) -> int:
        return self.hidden_size * self.hidden_size + self.hidden_size

    @property
    def effective_params(self) -> int:
        return self.depth * self.layer_params + self.pooler_params

    @property
    def total_params(self) -> int:
        return self.embedding_params + self.effective_params

    def flops_per_seq(self, seq_len: int = 128) -> int:
        """Forward FLOPs (2 per multiply-add) for one sequence of `seq_len` tokens.

        Per token and layer: 4H² + 2HI multiply-adds in the projections and the FFN, plus 2·L·H
        in attention (scores QKᵀ and the weighted sum of V); the pooler adds H² once. Softmax,
        layer norms and the embedding lookup are lower order and left out."""
        h, i, length = self.hidden_size, self.intermediate_size, seq_len
        macs = length * self.depth * (4 * h * h + 2 * h * i + 2 * length * h) + h * h
        return 2 * macs

    def describe(self, seq_len: int = 128) -> dict:
        out = asdict(self)
        out.update(total_params=self.total_params, embedding_params=self.embedding_params,
                   effective_params=self.effective_params,
                   encoder_share=round(self.effective_params / self.total_params, 6),
                   seq_len=seq_len, flops_per_seq=self.flops_per_seq(seq_len))
        return out

    # ---- GluonNLP model -------------------------------------------------------------------
    def build(self, dropout: float = 0.0, output_all_encodings: bool = False, prefix: Optional[str] = None,
              decoder: bool = False):
        """A GluonNLP 0.10 `BERTModel` of this architecture (pooler on, no classifier; an MLM
        decoder only when asked, for the MLM + KL distillation loss)."""
        from gluonnlp.model import BERTEncoder, BERTModel
        encoder = BERTEncoder(num_layers=self.depth, units=self.hidden_size,
                              hidden_size=self.intermediate_size, max_length=self.max_length,
                              num_heads=self.num_heads, dropout=dropout, output_attention=False,
                              output_all_encodings=output_all_encodings, activation="gelu",
                              layer_norm_eps=1e-12)
        return BERTModel(encoder, vocab_size=self.vocab_size, token_type_vocab_size=self.token_types,
                         units=self.hidden_size, embed_size=self.hidden_size, word_embed=None,
                         use_pooler=True, use_decoder=decoder, use_classifier=False, prefix=prefix)

    def extracted(self, tuple_: Sequence[int]) -> "Arch":
        """The sub-architecture ⟨D, A, H, I⟩ = `tuple_` of this source: its vocabulary, positions
        and token types are the source's (the embedding is what it extracts from)."""
        return Arch(*tuple_, vocab_size=self.vocab_size, max_length=self.max_length, token_types=self.token_types)

    @classmethod
    def read(cls, path) -> "Arch":
        """The architecture a model folder's arch.json records (other keys there are counts)."""
        try:
            info = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise BortError(f"{path}: expected a readable arch.json ({err})") from None
        return cls.from_dict({k: info[k] for k in cls.__dataclass_fields__ if k in info}, str(path))

    @classmethod
    def from_dict(cls, data: dict, where: str = "architecture") -> "Arch":
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise BortError(f"{where}: unknown key(s) {unknown}; expected {sorted(known)}")
        try:
            return cls(**data)
        except TypeError as err:
            raise BortError(f"{where}: {err}") from None


def read_student(extract_metrics, teacher_arch_json) -> Arch:
    """The student architecture: ξ* as the extract stage recorded it (metrics/extract.json
    `chosen.arch`), a sub-architecture of the source whose arch.json the teacher stage wrote."""
    path = Path(extract_metrics)
    try:
        chosen = json.loads(path.read_text())["chosen"]["arch"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise BortError(f"{path}: expected the extract stage's metrics with chosen.arch ({err!r})") from None
    source = Arch.read(teacher_arch_json)
    return source.extracted(chosen).check_within(source)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bort.arch", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    show = sub.add_parser("show", help="exact parameter and FLOP counts of ⟨D, A, H, I⟩")
    for name in ("depth", "num_heads", "hidden_size", "intermediate_size"):
        show.add_argument(name, type=int)
    show.add_argument("--vocab-size", type=int, default=BERT_VOCAB)
    show.add_argument("--max-length", type=int, default=512)
    show.add_argument("--seq-len", type=int, default=128)
    show.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    arch = Arch(args.depth, args.num_heads, args.hidden_size, args.intermediate_size,
                vocab_size=args.vocab_size, max_length=args.max_length)
    info = arch.describe(args.seq_len)
    if args.json:
        print(json.dumps(info, sort_keys=True))
    else:
        print(f"{arch} vocab {arch.vocab_size}: total {arch.total_params:,} | embedding "
              f"{arch.embedding_params:,} | effective {arch.effective_params:,} "
              f"({100 * info['encoder_share']:.1f}%) | {info['flops_per_seq'] / 1e9:.3f} GFLOP/seq at L={args.seq_len}")
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
