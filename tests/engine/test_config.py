import re
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


# -- issue 9: ranges checked when the config is built, by one declarative rule set ------------------
import dataclasses  # noqa: E402
import math  # noqa: E402
import typing  # noqa: E402

from genlab.api import build_config  # noqa: E402
from genlab.engine.config import class_bounds, resume_changes  # noqa: E402
from genlab.errors import GenlabError  # noqa: E402
from genlab.recipes import all_recipes, get_recipe  # noqa: E402


@pytest.mark.parametrize("item,needle", [
    ("seed=-1", "seed must be in [0, 2**63)"), ("seed=99999999999999999999999", "does not fit in 64 bits"),
    ("device=meta", "device must be auto, cpu, cuda, cuda:N or mps"), ("x_max=inf", "x_max must be a finite"),
    ("hidden=-3", "hidden must be in [1, inf)"), ("hidden=0", "hidden must be in [1, inf)"),
    ("latent_dim=0", "latent_dim must be in [1, inf)"), ("coverage_bins=0", "coverage_bins must be in [1, inf)"),
    ("warmup_steps=-5", "warmup_steps must be in [0, inf)"), ("lr=nan", "lr must be a finite number"),
])
def test_bad_values_fail_when_the_config_is_built(item, needle):
    with pytest.raises(ConfigError) as e:
        build_config(get_recipe("gan-curve"), overrides=[item])
    assert needle in str(e.value) and "(in --set)" in str(e.value)


def test_negative_values_allowed_only_where_declared():
    c = build_config(get_recipe("gan-curve"), overrides=["x_min=-5", "x_max=-1"])
    assert (c.x_min, c.x_max) == (-5.0, -1.0)
    assert class_bounds(get_recipe("gan-curve").Config)["seed"] == "[0, 2**63)"


def _numeric_keys(cls) -> list[str]:
    hints = typing.get_type_hints(cls)
    keys = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        args = typing.get_args(tp)
        if tp in (int, float) or (typing.get_origin(tp) in (list, tuple) and args and args[0] in (int, float)):
            keys.append(f.name)
    return keys


FUZZ_VALUES = ["-1", "0", "-0.5", "1e300", "-1e300", str(10**30), str(2**63), "inf", "-inf", "nan", "abc", "",
               "[1, -2]", "1.5"]


@pytest.mark.parametrize("recipe", [r.name for r in all_recipes()])
def test_fuzz_numeric_set_values_never_crash(recipe):
    """Every numeric key of every recipe (config and sampling options), every hostile value:
    a ConfigError naming the key, or a valid config whose numbers are all finite 64-bit values."""
    cls = get_recipe(recipe)
    for key in _numeric_keys(cls.Config):
        for value in FUZZ_VALUES:
            try:
                cfg = build_config(cls, overrides=[f"{key}={value}"])
            except GenlabError as e:
                assert "\n" not in str(e) and (key in str(e) or "invalid config" in str(e)), (key, value, e)
                continue
            v = getattr(cfg, key)
            for x in (v if isinstance(v, (list, tuple)) else [v]):
                assert math.isfinite(x) and (isinstance(x, float) or abs(x) < 2**63), (key, value, x)
    for key in _numeric_keys(cls.Sample):
        for value in FUZZ_VALUES:
            try:
                opts = apply_overrides(cls.Sample(), parse_set([f"{key}={value}"]), "sample options")
            except GenlabError as e:
                assert "\n" not in str(e), (key, value, e)
                continue
            v = getattr(opts, key)
            assert all(math.isfinite(x) for x in (v if isinstance(v, (list, tuple)) else [v])), (key, value)
            if key == "n":
                assert 1 <= v <= 100000


def test_resume_keys_are_declared_per_recipe():
    gpt = get_recipe("gpt")
    before = build_config(gpt)
    after = build_config(gpt, overrides=["max_steps=10", "tokenizer=word", "n_layer=3", "eval_tokens=5"])
    allowed, refused = resume_changes(before, after)
    assert set(allowed) == {"max_steps", "eval_tokens"} and set(refused) == {"tokenizer", "n_layer"}


def test_paths_are_stored_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    c = build_config(get_recipe("gpt"), overrides=["tokenizer_files=tok"], data="../text.txt")
    assert c.data == str(tmp_path / ".." / "text.txt") and c.tokenizer_files == str(tmp_path / "tok")


@pytest.mark.parametrize("text,needle", [
    ("[train]\nlr = 1e6\n", "table [train] is not a config section"),
    ("lr = 0.1\n[model]\nhidden = 3\n", "table [model]"),
    ('[genlab]\nrecipe = "gpt"\n[config]\nlr = 0.1\n', "is for recipe 'gpt'"),
    ('[config]\nlr = 0.1\n[extra]\nx = 1\n', "a [config] table goes only with [genlab]"),
])
def test_config_file_tables_are_refused_by_name(tmp_path, text, needle):
    (tmp_path / "c.toml").write_text(text)
    with pytest.raises(ConfigError, match=re.escape(needle)):
        build_config(get_recipe("gan-curve"), config_file=tmp_path / "c.toml")


def test_yaml_table_refused_and_saved_run_config_accepted(tmp_path):
    (tmp_path / "c.yaml").write_text("train:\n  lr: 1000000\n")
    with pytest.raises(ConfigError, match=re.escape("table [train]")):
        build_config(get_recipe("gan-curve"), config_file=tmp_path / "c.yaml")
    (tmp_path / "run.toml").write_text('[genlab]\nrecipe = "gan-curve"\nversion = "0"\n[config]\nhidden = 32\n')
    assert build_config(get_recipe("gan-curve"), config_file=tmp_path / "run.toml").hidden == 32


def test_every_recipes_periodic_eval_names_its_own_keys_and_is_valid():
    import dataclasses

    from genlab.engine.config import estimate_config, validate
    from genlab.recipes import REGISTRY, get_recipe

    for name in REGISTRY:
        cfg = get_recipe(name).Config()
        cheap = type(cfg).periodic_eval
        assert set(cheap) <= {f.name for f in dataclasses.fields(cfg)}, name
        est = estimate_config(cfg)
        validate(est)
        assert all(getattr(est, k) == v for k, v in cheap.items()), name
        assert estimate_config(dataclasses.replace(cfg, eval_estimate=False)) == dataclasses.replace(
            cfg, eval_estimate=False)


def test_every_recipes_saved_defaults_name_its_own_keys_and_are_valid():
    import dataclasses

    from genlab.recipes import REGISTRY, get_recipe

    for name in REGISTRY:
        cls = get_recipe(name)
        old = cls.Config.saved_defaults
        assert set(old) <= {f.name for f in dataclasses.fields(cls.Config)}, name
        assert all(getattr(build_config(cls, base={"seed": 1}), k) == v for k, v in old.items()), name
        assert build_config(cls, base={**old, "seed": 1}) == build_config(cls, base={"seed": 1}), name
