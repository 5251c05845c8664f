import json

import mxnet as mx
import numpy as np
import pytest

from bort.arch import Arch, ROBERTA_VOCAB
from bort.errors import BortError
from conftest import run_module


def instantiated_count(arch: Arch) -> int:
    model = arch.build()
    model.initialize()
    model(mx.nd.ones((1, 3)), mx.nd.zeros((1, 3)), mx.nd.array([3]))
    return sum(int(np.prod(p.shape)) for p in model.collect_params().values())


@pytest.mark.parametrize("arch", [
    Arch(6, 12, 384, 1536),                              # MiniLM teacher
    Arch(4, 8, 768, 1024, vocab_size=ROBERTA_VOCAB),     # H/I swapped: the published counts
    Arch(4, 8, 1024, 768, vocab_size=ROBERTA_VOCAB),     # Bort as released (alexa/bort issue 3)
    Arch(2, 4, 192, 384),
    Arch(3, 6, 288, 768, max_length=128),
    Arch(1, 1, 16, 7, vocab_size=50, token_types=3),
    Arch(12, 12, 768, 3072),                             # BERT-base
])
def test_counts_equal_gluonnlp(arch):
    assert arch.total_params == instantiated_count(arch)


def test_published_rows():
    large = Arch(24, 16, 1024, 4096)
    assert large.total_params == 335_141_888 and large.embedding_params == 31_782_912
    assert round(100 * large.effective_params / large.total_params, 1) == 90.5
    base = Arch(12, 12, 768, 3072)
    assert round(base.total_params / 1e6, 2) == 109.48
    bort = Arch(4, 8, 768, 1024, vocab_size=ROBERTA_VOCAB)
    assert bort.total_params == 55_350_784 and round(bort.embedding_params / 1e6, 2) == 39.00
    labelled = Arch(4, 8, 1024, 768, vocab_size=ROBERTA_VOCAB)
    assert round(labelled.total_params / 1e6, 2) == 76.16
    assert Arch(6, 12, 384, 1536).total_params == 22_713_216


def test_flops_formula():
    a = Arch(2, 4, 64, 128)
    length = 10
    per_layer_token = 4 * 64 * 64 + 2 * 64 * 128 + 2 * length * 64
    assert a.flops_per_seq(length) == 2 * (length * 2 * per_layer_token + 64 * 64)


@pytest.mark.parametrize("args, message", [
    ((4, 7, 768, 1024), "not divisible by 7 attention heads"),
    ((0, 8, 768, 1024), "depth: expected a positive integer, got 0"),
    ((4, 8, -768, 1024), "hidden_size: expected a positive integer"),
    ((4, 8, 768, 1.5), "intermediate_size: expected a positive integer"),
])
def test_bad_architectures(args, message):
    with pytest.raises(BortError, match=message):
        Arch(*args)


def test_outside_source():
    with pytest.raises(BortError, match="not a sub-architecture of the source"):
        Arch(8, 12, 384, 1536).check_within(Arch(6, 12, 384, 1536))


def test_cli_json():
    out = run_module("-m", "bort.arch", "show", "24", "16", "1024", "4096", "--json")
    info = json.loads(out.stdout)
    assert info["total_params"] == 335_141_888 and info["effective_params"] == 303_358_976
    out = run_module("-m", "bort.arch", "show", "4", "8", "768", "1024", "--vocab-size", "50265", "--json")
    assert json.loads(out.stdout)["total_params"] == 55_350_784
    bad = run_module("-m", "bort.arch", "show", "4", "7", "768", "1024")
    assert bad.returncode == 2 and bad.stderr.startswith("error: architecture ⟨4, 7, 768, 1024⟩")
