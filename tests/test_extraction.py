"""The published extraction (bort.extraction): W, every candidate × θ trained, the argmax, the front,
the rank stability; the MLP family's CLI; the BERT family's space, workers and resume."""
import dataclasses
import json
import math

import numpy as np
import pytest

from bort import extraction
from bort.arch import Arch
from bort.errors import BortError
from bort.extraction import bert
from conftest import ROOT, run_module


class Toy:
    """A family with analytic errors: e falls with capacity and with the interval; θ = 1 helps
    the deep candidates only, so the best θ differs per candidate."""
    name, fields = "toy", ("depth", "width")
    thetas = [{"lr": 0.1}, {"lr": 0.3}]

    def __init__(self):
        self.calls = []

    def space(self):
        return [(d, w) for d in (1, 2, 3) for w in (4, 8, 16)]

    def size(self, pt):
        return pt[0] * pt[1] ** 2

    def cost(self, pt):
        return pt[0] * pt[1] ** 2 + 10 * pt[0]

    def error(self, pt, theta, steps):
        base = 0.2 + 1.5 / (pt[0] * pt[1]) + 1.0 / steps
        return base * (0.9 if theta == 1 and pt[0] == 3 else 1.0)

    def train_all(self, jobs, intervals, progress=None):
        self.calls.append((list(jobs), list(intervals)))
        return {(pt, k): [self.error(pt, k, s) for s in intervals] for pt, k in jobs}


def test_w_coefficient_is_the_published_formula():
    assert extraction.w_coefficient(25, 50, 0.5, 100, 200) == pytest.approx((1 - 0.25) * (1 - 0.25) / 0.5)
    assert extraction.w_coefficient(100, 10, 0.1, 100, 200) == 0          # T itself scores 0
    with pytest.raises(BortError, match="error must be positive"):
        extraction.w_coefficient(1, 1, 0.0, 2, 2)


def test_interval_is_polynomial_in_one_over_eps():
    assert [extraction.interval(e, 4) for e in (1.0, 0.5, 0.25, 0.3)] == [4, 8, 16, 14]
    assert extraction.interval(0.7, 21) == 30                 # not 31 from 30.000000000000004
    with pytest.raises(BortError, match="ε must be positive"):
        extraction.interval(0, 4)


def test_every_candidate_and_theta_is_trained_once_and_xi_star_is_the_argmax():
    family = Toy()
    result = extraction.extract(family, 0.5, 4, other_eps=[1.0, 0.25])
    (jobs, intervals), = family.calls
    assert sorted(jobs) == sorted((pt, k) for pt in family.space() for k in range(2))
    assert intervals == [4, 8, 16]                            # s(1), s(0.5) and its 2s = s(0.25)
    p_top, i_top = max(map(family.size, family.space())), max(map(family.cost, family.space()))
    for choice in result.choices:
        best = max(family.space(), key=lambda pt: extraction.w_coefficient(
            family.size(pt), family.cost(pt), min(family.error(pt, k, choice.steps) for k in range(2)), p_top, i_top))
        assert choice.best.point == best
    deep = next(c for c in result.candidates if c.point == (3, 8))
    shallow = next(c for c in result.candidates if c.point == (1, 8))
    assert deep.theta(8) == 1 and shallow.theta(8) == 0
    summary = extraction.summary(result)
    assert summary["trained_candidates"] == summary["grid_candidates"] == 9 and summary["trainings"] == 18
    assert [row["eps"] for row in summary["by_eps"]] == [0.5, 1.0, 0.25]


def test_front_is_exactly_the_non_dominated_set():
    result = extraction.extract(Toy(), 0.5, 4)
    s = result.steps
    keys = {c.point: (c.params, c.flops, c.error(s)) for c in result.candidates}
    for c in result.candidates:
        dominated = any(all(x <= y for x, y in zip(keys[o.point], keys[c.point])) and keys[o.point] != keys[c.point]
                        for o in result.candidates)
        assert (c in result.front) == (not dominated)
    rows = extraction.rows(result)
    cols = extraction.columns(result)
    assert sum(r[cols.index("on_front")] for r in rows) == len(result.front)
    assert sum(r[cols.index("chosen")] for r in rows) == 1


class Reordering(Toy):
    """Errors whose order over the space changes between intervals (wide networks catch up)."""

    def error(self, pt, theta, steps):
        return 0.2 + (pt[0] * pt[1] / 8) / steps + 1.0 / pt[1]


def test_rank_stability_is_spearman_between_s_and_2s():
    from scipy.stats import spearmanr
    result = extraction.extract(Reordering(), 0.5, 4)
    s = result.steps
    expected = spearmanr([c.error(s) for c in result.candidates], [c.error(2 * s) for c in result.candidates])
    assert result.rank_stability == pytest.approx(expected.correlation) and result.rank_stability < 0.99
    assert extraction.extract(Toy(), 0.5, 4).rank_stability == pytest.approx(1.0)


def test_a_diverged_candidate_is_an_error():
    class Diverging(Toy):
        def error(self, pt, theta, steps):
            return float("nan") if pt == (2, 8) else super().error(pt, theta, steps)
    with pytest.raises(BortError, match=r"toy candidate \(2, 8\): error nan after 4 steps"):
        extraction.extract(Diverging(), 1.0, 4)


def test_the_mlp_family_agrees_with_the_exhaustive_optimum():
    """`python -m bort.extraction mlp --eps 0.5 --json`: every candidate trained, and W(ξ*) with
    the errors of the long reference run is within (1 + ε) of the exhaustive optimum's."""
    done = run_module("-m", "bort.extraction", "mlp", "--eps", "0.5", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    assert out["trained_candidates"] == out["grid_candidates"] == 20
    ex = out["exhaustive"]
    assert ex["within_1_plus_eps"] and ex["chosen_w"] * 1.5 >= ex["w"]
    assert len(out["by_eps"]) == 3 and out["chosen"]["arch"] == out["by_eps"][0]["arch"]


def test_mlp_cli_rejects_bad_input_in_one_line():
    done = run_module("-m", "bort.extraction", "mlp", "--reference-epochs", "5")
    assert done.returncode == 2 and "error: --reference-epochs 5: expected at least 2·s(ε) = 40 epochs" in done.stderr
    done = run_module("-m", "bort.extraction", "mlp", "--learning-rates", "0.01", "-0.01")
    assert done.returncode == 2 and done.stderr.strip().endswith("error: --learning-rates: [-0.01]; expected positive numbers")


def test_space_rejects_values_outside_the_source():
    with pytest.raises(BortError, match=r"extract.space.hidden_size: \[512\] outside 1..384"):
        bert.search_space(Arch(6, 12, 384, 1536), [2], [4], [512], [384])


def test_space_skips_indivisible_heads_and_the_source():
    assert bert.search_space(Arch(6, 12, 384, 1536), [6], [5, 12], [384], [1536]) == []


def test_the_embedded_space_has_at_least_100_candidates():
    cfg = bert.ExtractConfig.load("extract", ROOT / "params.yaml")
    family = bert.BertFamily(Arch(6, 12, 384, 1536), cfg)
    assert len(family.space()) >= 100


@pytest.fixture(scope="module")
def tiny_family(tiny_teacher):
    from bort import distillation as kd
    model, arch = tiny_teacher
    rng = np.random.RandomState(1)
    train, held = rng.randint(5, 60, (32, 8)).astype(np.float32), rng.randint(5, 60, (8, 8)).astype(np.float32)
    data = bert.Data.compact(kd.param_arrays(model), arch, train, kd.teacher_targets(model, train),
                             held, kd.teacher_targets(model, held))
    cfg = bert.ExtractConfig(eps=1.0, other_eps=[], steps_per_unit_eps=2, learning_rates=[1e-3, 3e-3], seq_len=8,
                             space=bert.SpaceConfig([1, 2], [2, 4], [16, 32], [32]), batch_size=8, chunk_len=8,
                             train_chunks=32, fit_chunks=32, heldout_chunks=8, seed=0, init="teacher", workers=2)
    return arch, data, cfg


def test_workers_do_not_change_the_errors_and_the_journal_resumes(tiny_family, tmp_path):
    arch, data, cfg = tiny_family
    jobs = [((1, 2, 16, 32), 0), ((1, 2, 16, 32), 1), ((2, 4, 32, 32), 0), ((2, 4, 32, 32), 1)]
    two = bert.BertFamily(arch, cfg, data).train_all(jobs, [2, 4])
    one = bert.BertFamily(arch, dataclasses.replace(cfg, workers=1), data).train_all(jobs, [2, 4])
    assert one == two and all(len(v) == 2 and 0 < min(v) < 1.5 for v in one.values())
    journal = bert.Journal(tmp_path / "journal.jsonl", "abc")
    journal.add((1, 2, 16, 32), [2, 4], [one[jobs[0]], one[jobs[1]]])
    with (tmp_path / "journal.jsonl").open("a") as f:
        f.write('{"fingerprint": "abc", "point": [2, 4')        # cut by an interruption
    seen = []
    resumed = bert.BertFamily(arch, cfg, data, journal=bert.Journal(tmp_path / "journal.jsonl", "abc"))
    assert resumed.train_all(jobs, [2, 4], progress=lambda pt, e: seen.append(pt)) == one
    assert seen == [(2, 4, 32, 32)]                           # only the missing candidate trained
    seen.clear()                                              # other intervals: nothing journalled applies
    again = bert.BertFamily(arch, cfg, data, journal=bert.Journal(tmp_path / "journal.jsonl", "abc"))
    again.train_all(jobs, [2, 4, 6], progress=lambda pt, e: seen.append(pt))
    assert sorted(seen) == [(1, 2, 16, 32), (2, 4, 32, 32)]
    other = bert.Journal(tmp_path / "journal.jsonl", "other params")
    assert other.done == {}                                   # another fingerprint starts afresh


def test_tiny_extraction_end_to_end(tiny_family):
    arch, data, cfg = tiny_family
    result = extraction.extract(bert.BertFamily(arch, dataclasses.replace(cfg, workers=1), data), cfg.eps,
                                cfg.steps_per_unit_eps, [2.0])
    assert len(result.candidates) == 8                        # D 2 × A 2 × H 2 × I 1
    p_top = max(Arch(*c.point).effective_params for c in result.candidates)
    i_top = max(Arch(*c.point).flops_per_seq(8) for c in result.candidates)
    w = {c.point: (1 - Arch(*c.point).effective_params / p_top) * (1 - Arch(*c.point).flops_per_seq(8) / i_top)
         / min(c.errors[result.steps]) for c in result.candidates}
    assert result.chosen.best.point == max(w, key=lambda pt: (w[pt], tuple(-v for v in pt)))
    assert math.isfinite(result.rank_stability) and all(0 < c.error(result.steps) < 2 for c in result.candidates)


def test_the_committed_xi_star_is_the_argmax_of_the_published_w():
    """reports/candidates.csv and metrics/extract.json, as `dvc repro` committed them: every
    candidate trained, ξ* = argmax of W recomputed from p, i and e, the front and stability recorded."""
    import csv
    with open(ROOT / "reports" / "candidates.csv") as f:
        rows = list(csv.DictReader(f))
    metrics = json.loads((ROOT / "metrics" / "extract.json").read_text())
    assert len(rows) == metrics["grid_candidates"] == metrics["trained_candidates"] >= 100
    p_top, i_top = max(int(r["params"]) for r in rows), max(int(r["flops"]) for r in rows)
    w = {tuple(int(r[k]) for k in bert.BertFamily.fields):
         extraction.w_coefficient(int(r["params"]), int(r["flops"]), float(r["error"]), p_top, i_top) for r in rows}
    best = max(w, key=lambda pt: (w[pt], tuple(-v for v in pt)))
    chosen = [tuple(int(r[k]) for k in bert.BertFamily.fields) for r in rows if r["chosen"] == "1"]
    assert chosen == [best] and list(best) == metrics["chosen"]["arch"]
    assert metrics["rank_stability_spearman"] >= 0.9
    assert metrics["front_size"] == sum(r["on_front"] == "1" for r in rows)
    assert len(metrics["by_eps"]) >= 3


def test_bort_as_released_is_the_timed_bort():
    """Bort is ⟨4, 8, 1024, 768⟩ (alexa/bort: units=1024, hidden_size=768; issue 3) in params.yaml
    and in the committed timing; the H/I-swapped reading stays as the published-count row."""
    from bort.timing import TimeConfig
    models = TimeConfig.load("time", ROOT / "params.yaml").models
    assert models["bort"] == [4, 8, 1024, 768, 50265] and models["bort_published_counts"] == [4, 8, 768, 1024, 50265]
    timing = json.loads((ROOT / "metrics" / "timing.json").read_text())
    assert timing["models"]["bort"]["arch"] == [4, 8, 1024, 768]
