"""params.yaml as typed sections: every bad value is one line naming its dotted key, before any work."""
import dataclasses
import importlib.util
from dataclasses import dataclass
from typing import Dict, List, Literal, Optional

import pytest
import yaml

from bort import params, tasks
from bort.errors import BortError
from bort.extraction.bert import ExtractConfig
from bort.finetune import AgoraConfig, FinetuneSection
from bort.params import Section
from bort.pretraining import PretrainConfig
from bort.significance import SignificanceConfig
from bort.timing import TimeConfig
from conftest import ROOT


@dataclass(frozen=True)
class Inner(Section):
    size: int
    kind: Literal["a", "b"] = "a"


@dataclass(frozen=True)
class Outer(Section):
    seed: int
    noise: float
    source: Optional[str]
    inner: Inner
    sizes: Dict[str, List[int]]


GOOD = {"seed": 1, "noise": 0.5, "source": None, "inner": {"size": 3, "kind": "a"}, "sizes": {"x": [1, 2]}}


def write(tmp_path, section):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"data": section}))
    return path


def error(tmp_path, section) -> str:
    with pytest.raises(BortError) as caught:
        Outer.load("data", write(tmp_path, section))
    return str(caught.value)


def test_a_good_section_is_built_and_converted(tmp_path):
    got = Outer.load("data", write(tmp_path, dict(GOOD, noise=0)))
    assert got.noise == 0.0 and isinstance(got.noise, float) and got.inner == Inner(3)


@pytest.mark.parametrize("change,message", [
    ({"seed": "zero"}, "params.yaml: key data.seed: expected int, got str 'zero'"),
    ({"seed": True}, "params.yaml: key data.seed: expected int, got bool True"),
    ({"source": 3}, "params.yaml: key data.source: expected str or null, got int 3"),
    ({"inner": {"size": 3, "kind": "c"}}, "params.yaml: key data.inner.kind: expected one of 'a', 'b', got 'c'"),
    ({"inner": {"size": 3, "sise": 4}}, "params.yaml: key data.inner: unknown key(s) ['sise']; expected ['kind', 'size']"),
    ({"inner": {"kind": "a"}}, "params.yaml: key data.inner.size: missing; expected int"),
    ({"inner": {"size": 3}}, "params.yaml: key data.inner.kind: missing; expected one of 'a', 'b'"),
    ({"sizes": {"x": [1, "2"]}}, "params.yaml: key data.sizes.x[1]: expected int, got str '2'"),
    ({"inner": 5}, "params.yaml: key data.inner: expected a section (mapping), got 5"),
])
def test_bad_values_name_the_dotted_key(tmp_path, change, message):
    path = tmp_path / "params.yaml"
    assert error(tmp_path, dict(GOOD, **change)).endswith(message.replace("params.yaml", str(path)))


def test_missing_and_unknown_keys(tmp_path):
    section = dict(GOOD)
    del section["noise"]
    assert error(tmp_path, section).endswith("key data.noise: missing; expected float")
    assert "unknown key(s) ['sede']" in error(tmp_path, dict(GOOD, sede=2))


def _script_section(script: str, name: str):
    spec = importlib.util.spec_from_file_location(script, ROOT / "pipeline" / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


SECTIONS = {"data": ("prepare", "DataConfig"), "teacher": ("teacher", "TeacherConfig"),
            "agora_pool": ("agora_pool", "AgoraPoolConfig"), "int8": ("int8", "Int8Config")}
LIBRARY = {"extract": ExtractConfig, "time": TimeConfig, "pretrain": PretrainConfig, "finetune": FinetuneSection,
           "significance": SignificanceConfig}


def test_every_section_of_params_yaml_loads_and_defaults_are_its_values():
    data = params.load(ROOT / "params.yaml")
    classes = dict(LIBRARY, **{k: _script_section(*v) for k, v in SECTIONS.items()})
    assert set(data) == set(classes) | {"tasks", "device"}
    for name, cls in classes.items():
        section = cls.load(name, ROOT / "params.yaml")
        assert isinstance(section, cls)
    for cls, values in ((PretrainConfig, data["pretrain"]), (AgoraConfig, data["finetune"]["agora"])):
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                assert f.default == values[f.name], (cls.__name__, f.name)
    assert [t.name for t in tasks.trained(data["tasks"])] == data["tasks"]


def test_choices_and_rules_are_checked_when_loaded(tmp_path):
    data = params.load(ROOT / "params.yaml")
    data["finetune"]["heldout"] = "tset"
    data["extract"]["init"] = "rand"
    data["finetune"]["bort"]["frozen_layers"] = 2
    data["finetune"]["bort"]["freeze_embeddings"] = False
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(BortError, match=r"key finetune.heldout: expected one of 'auto', 'test', 'dev_half', got 'tset'"):
        FinetuneSection.load("finetune", path)
    with pytest.raises(BortError, match=r"key extract.init: expected one of 'teacher', 'random', got 'rand'"):
        ExtractConfig.load("extract", path)
    data["finetune"]["heldout"] = "auto"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(BortError, match=r"key finetune.bort.frozen_layers: > 0 needs freeze_embeddings: true"):
        FinetuneSection.load("finetune", path)


def test_the_task_list_is_checked():
    with pytest.raises(BortError, match="'GLUE-42': unknown task"):
        tasks.trained(["CoLA", "GLUE-42"])
    with pytest.raises(BortError, match="'AX': it is scored by MNLI-m's model, not trained"):
        tasks.trained(["AX"])


def test_presets_change_settings_by_task_size(tmp_path):
    data = params.load(ROOT / "params.yaml")
    data["finetune"]["preset"] = "real"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    section = FinetuneSection.load("finetune", path)
    real = data["finetune"]["presets"]["real"]
    small, large = section.model("bert", 250), section.model("bert", real["sizes"][0]["above"] + 1)
    assert small.max_len == real["bert"]["max_len"] and small.max_train == data["finetune"]["bert"]["max_train"]
    assert large.max_train == real["sizes"][0]["set"]["max_train"]
    assert section.model("bort-agora", 250) == section.model("bort", 250)
    data["finetune"]["preset"] = "rea"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(BortError, match=r"key finetune.preset: expected one of \['embedded', 'real'\], got 'rea'"):
        FinetuneSection.load("finetune", path)
    data["finetune"]["preset"] = "real"
    data["finetune"]["presets"]["real"]["sizes"][0]["set"]["max_trian"] = 5
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(BortError, match=r"finetune.presets.real.sizes\[0\].set: unknown key\(s\) \['max_trian'\]"):
        FinetuneSection.load("finetune", path)


def test_a_dotted_value_reads_one_key_of_another_section(tmp_path):
    from bort.finetune import HELDOUT
    data = params.load(ROOT / "params.yaml")
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    assert params.value("finetune.heldout", HELDOUT, path) == data["finetune"]["heldout"]
    del data["finetune"]["heldout"]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(BortError, match="key finetune.heldout: missing; expected one of 'auto', 'test', 'dev_half'"):
        params.value("finetune.heldout", HELDOUT, path)
