import pytest

from bort import params
from bort.errors import BortError


def test_wrong_type_names_the_key(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("data:\n  seed: zero\n")
    with pytest.raises(BortError, match=r"key data.seed: expected int, got str 'zero'"):
        params.section("data", {"seed": int}, path)


def test_missing_and_unknown_keys(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("data:\n  seed: 1\n  sede: 2\n")
    with pytest.raises(BortError, match=r"unknown key\(s\) \['sede'\]"):
        params.section("data", {"seed": int}, path)
    with pytest.raises(BortError, match=r"key data.noise: missing; expected float"):
        params.section("data", {"seed": int, "noise": float}, path)


def test_int_is_accepted_as_float(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("data:\n  noise: 0\n")
    assert params.section("data", {"noise": float}, path) == {"noise": 0.0}


def test_bool_is_not_an_int(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("data:\n  seed: true\n")
    with pytest.raises(BortError, match="expected int, got bool"):
        params.section("data", {"seed": int}, path)
