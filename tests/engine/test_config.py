from dataclasses import dataclass

import pytest

from genlab.engine.config import TrainConfig, apply_overrides, parse_set, read_config_file, to_toml
from genlab.errors import ConfigError


@dataclass
class MyConfig(TrainConfig):
    widths: list[int] = None  # type: ignore[assignment]
    name: str = "x"


def test_overrides_coerce_types():
    c = apply_overrides(MyConfig(), parse_set(["lr=3e-4", "max_steps=1_000", "bf16=true", "widths=8,16,32"]))
    assert c.lr == 3e-4 and c.max_steps == 1000 and c.bf16 is True


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match="unknown config key 'learning_rate'"):
        apply_overrides(TrainConfig(), {"learning_rate": 1})


@pytest.mark.parametrize("item,match", [("max_steps=ten", "max_steps"), ("bf16=maybe", "bf16"),
                                        ("lr=fast", "lr"), ("max_steps=1.5", "max_steps")])
def test_wrong_type_is_named(item, match):
    with pytest.raises(ConfigError, match=match):
        apply_overrides(TrainConfig(), parse_set([item]))


def test_invalid_values_rejected():
    with pytest.raises(ConfigError, match="lr_schedule"):
        apply_overrides(TrainConfig(), {"lr_schedule": "triangle"})
    with pytest.raises(ConfigError, match="max_steps"):
        apply_overrides(TrainConfig(), {"max_steps": 0})


def test_bad_set_syntax():
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_set(["lr"])


def test_toml_and_yaml_files(tmp_path):
    (tmp_path / "c.toml").write_text("lr = 0.01\nmax_steps = 5\n")
    (tmp_path / "c.yaml").write_text("lr: 0.02\nbatch_size: 8\n")
    assert apply_overrides(TrainConfig(), read_config_file(tmp_path / "c.toml")).max_steps == 5
    assert apply_overrides(TrainConfig(), read_config_file(tmp_path / "c.yaml")).batch_size == 8
    (tmp_path / "bad.toml").write_text("lr = = 3")
    with pytest.raises(ConfigError, match="cannot parse"):
        read_config_file(tmp_path / "bad.toml")
    with pytest.raises(ConfigError, match="not found"):
        read_config_file(tmp_path / "missing.toml")


def test_toml_roundtrip(tmp_path):
    import tomllib
    from dataclasses import asdict

    c = MyConfig(widths=[1, 2], name='a "quoted" name')
    text = to_toml({"genlab": {"recipe": "r"}, "config": asdict(c)})
    back = tomllib.loads(text)["config"]
    assert apply_overrides(MyConfig(), back) == c
