import math

import pytest

from bort import extraction
from bort.arch import Arch
from bort.errors import BortError

SOURCE = Arch(6, 12, 384, 1536)


def surrogate(arch: Arch) -> float:
    """Cheap, deterministic and monotone in capacity (ABnC): bigger never worse."""
    p = arch.effective_params / SOURCE.effective_params
    depth_term = 0.25 * (SOURCE.depth - arch.depth) / SOURCE.depth
    return 0.15 + 0.6 * math.exp(-6 * p) + depth_term


def run(mode, eps, max_error=0.7):
    space = extraction.search_space(SOURCE, [1, 2, 3, 4, 5], [4, 6, 8, 12], [96, 192, 288, 384],
                                    [384, 768, 1152, 1536])
    cands = extraction.make_candidates(space, SOURCE, eps, 1.0, 1.0, 128)
    calls = []

    def error(arch):
        calls.append(arch)
        return surrogate(arch)
    result = extraction.extract(cands, eps, mode, error, max_error=max_error)
    assert result.trained == len(calls) == len(set(calls))
    return result


@pytest.mark.parametrize("eps", [0.25, 0.5, 1.0])
def test_fptas_is_within_one_plus_eps_of_exhaustive_and_trains_fewer(eps):
    exact = run("exhaustive", eps)
    approx = run("fptas", eps)
    assert approx.best.w <= (1 + eps) * exact.best.w
    assert approx.best.error <= 0.7
    assert approx.trained < exact.trained == len(exact.candidates)


def test_fewer_candidates_are_trained_as_eps_grows():
    trained = [run("fptas", eps).trained for eps in (0.1, 0.5, 2.0)]
    assert trained[0] >= trained[1] >= trained[2] and trained[0] > trained[2]


def test_front_is_non_dominated():
    result = run("exhaustive", 0.5)
    front = result.front
    trained = [c for c in result.candidates if c.error is not None]
    assert front and result.best.error is not None
    for c in front:
        for o in trained:
            assert not (o.params <= c.params and o.flops <= c.flops and o.error <= c.error
                        and (o.params, o.flops, o.error) != (c.params, c.flops, c.error))
    off = [c for c in trained if not c.on_front]
    assert all(any(f.params <= c.params and f.flops <= c.flops and f.error <= c.error for f in front) for c in off)


def test_space_rejects_values_outside_the_source():
    with pytest.raises(BortError, match=r"extract.space.hidden_size: \[512\] outside 1..384"):
        extraction.search_space(SOURCE, [2], [4], [512], [384])


def test_space_skips_indivisible_heads_and_the_source():
    space = extraction.search_space(SOURCE, [6], [5, 12], [384], [1536])
    assert space == []                 # 384 % 5 != 0, and ⟨6, 12, 384, 1536⟩ is the source itself
