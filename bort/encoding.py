"""Text rows as BERT inputs: GluonNLP's WordPiece tokenizer and sentence transform, and padding.

One row is a text or a text pair, encoded as [CLS] first [SEP] (second [SEP]) token ids, token
types and a valid length, truncated to `max_len`. Fine-tuning encodes the same rows epoch after
epoch, so `Encoder` keeps each encoded row; `pad_rows` packs rows into one padded batch (the
model masks padding by the valid lengths).
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np

EncodedRow = Tuple[np.ndarray, int, np.ndarray]       # token ids, valid length, token types


class Encoder:
    """Tokenises rows once per (text pair, length) with GluonNLP's BERT transform; lower-cases
    unless the vocabulary says its checkpoint is cased (`vocab.lower`, set by bort.teacher)."""

    def __init__(self, vocab, lower: Optional[bool] = None):
        import gluonnlp as nlp
        self.vocab = vocab
        lower = getattr(vocab, "lower", True) if lower is None else lower
        self.tokenizer = nlp.data.BERTTokenizer(vocab, lower=lower)
        self._transforms = {}
        self._cache: Dict[tuple, EncodedRow] = {}

    def __call__(self, first: str, second: Optional[str], max_len: int) -> EncodedRow:
        key = (first, second, max_len)
        if key not in self._cache:
            import gluonnlp as nlp
            pair = second is not None
            tkey = (max_len, pair)
            if tkey not in self._transforms:
                self._transforms[tkey] = nlp.data.BERTSentenceTransform(self.tokenizer, max_seq_length=max_len,
                                                                         pad=False, pair=pair)
            ids, length, types = self._transforms[tkey]((first, second) if pair else (first,))
            self._cache[key] = (np.asarray(ids, np.float32), int(length), np.asarray(types, np.float32))
        return self._cache[key]

    @property
    def pad_id(self) -> int:
        return self.vocab[self.vocab.padding_token]


def pad_rows(rows: Sequence[EncodedRow], pad_id: int):
    """(ids, types, lengths) float32 arrays of a batch, padded to its longest row."""
    width = max(r[1] for r in rows)
    ids = np.full((len(rows), width), pad_id, np.float32)
    types = np.zeros((len(rows), width), np.float32)
    lengths = np.zeros(len(rows), np.float32)
    for k, (tok, length, seg) in enumerate(rows):
        ids[k, :length], types[k, :length], lengths[k] = tok[:length], seg[:length], length
    return ids, types, lengths


def encode(vocab, texts: Sequence[str], max_len: int = 128, pairs: Sequence[str] = None):
    """Token ids, token types and valid lengths for a batch of texts (or text pairs), padded."""
    encoder = Encoder(vocab)
    seconds = pairs if pairs is not None else [None] * len(texts)
    return pad_rows([encoder(a, b, max_len) for a, b in zip(texts, seconds)], encoder.pad_id)
