"""The one config schema: defaults, YAML + --set merging, typo hints, type errors, round trips."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lmtune.config import Config, build_config, load_config, parse_value
from lmtune.errors import ConfigError, UserError
from lmtune.tasks import checked_config

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def test_defaults_validate():
    cfg = build_config()
    assert cfg == Config()
    assert cfg.method.name == "full"
    assert cfg.task.name == "classification"
    assert cfg.train.lr == pytest.approx(1e-4)
    assert cfg.run_dir == Path("runs") / "run"


def test_yaml_file_and_overrides_merge(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "name: demo\n"
        "data:\n  train: a.csv\n  text_column: review\n"
        "train:\n  lr: 1.0e-4\n  batch_size: 4\n  epochs: 2\n"
    )
    cfg = load_config(path, ["train.batch_size=8", "method.name=lora", "data.label_column=stars"])
    assert cfg.name == "demo"
    assert cfg.data.train == "a.csv"
    assert cfg.data.text_column == "review"  # from the file, untouched by overrides
    assert cfg.data.label_column == "stars"  # override of a key the file does not set
    assert cfg.train.lr == pytest.approx(1e-4)
    assert cfg.train.batch_size == 8  # override wins over the file
    assert cfg.train.epochs == 2
    assert cfg.method.name == "lora"
    # build_config with the same dict gives the same result, and does not mutate its input
    base = yaml.safe_load(path.read_text())
    again = build_config(base, ["train.batch_size=8", "method.name=lora", "data.label_column=stars"])
    assert again == cfg
    assert base["train"]["batch_size"] == 4


def test_set_values_are_yaml_scalars():
    cfg = build_config(overrides=["train.lr=3e-5", "train.max_grad_norm=null", "train.max_steps=7",
                                  "data.lowercase=true", "data.text_column=0"])
    assert isinstance(cfg.train.lr, float) and cfg.train.lr == pytest.approx(3e-5)
    assert cfg.train.max_grad_norm is None
    assert cfg.train.max_steps == 7 and isinstance(cfg.train.max_steps, int)
    assert cfg.data.lowercase is True
    assert cfg.data.text_column == 0  # a column position for files without a header
    assert isinstance(parse_value("0.5"), float)
    assert parse_value("null") is None
    assert parse_value("a=b") == "a=b"


def test_set_value_may_contain_equals_sign():
    cfg = build_config(overrides=["name=a=b"])
    assert cfg.name == "a=b"


def test_set_without_equals_is_an_error():
    with pytest.raises(ConfigError, match="key=value"):
        build_config(overrides=["train.lr"])


def test_unknown_top_level_key_suggests_nearest():
    with pytest.raises(ConfigError) as err:
        build_config({"nmae": "x"})
    assert "'nmae'" in str(err.value)
    assert "did you mean 'name'" in str(err.value)


def test_unknown_nested_key_suggests_nearest():
    with pytest.raises(ConfigError) as err:
        build_config(overrides=["train.lrr=1"])
    message = str(err.value)
    assert "train.lrr" in message
    assert "did you mean 'train.lr'" in message


def test_unknown_section_suggests_nearest():
    with pytest.raises(ConfigError, match="did you mean 'train'"):
        build_config({"trian": {"lr": 1}})


def test_unknown_key_without_neighbour_has_no_hint():
    with pytest.raises(ConfigError) as err:
        build_config(overrides=["train.zzzzzzzz=1"])
    assert "train.zzzzzzzz" in str(err.value)
    assert "did you mean" not in str(err.value)


def test_config_error_is_a_user_error():
    with pytest.raises(UserError) as err:
        build_config({"bogus": 1})
    assert err.value.exit_code == 2


@pytest.mark.parametrize(("override", "key"), [
    ("train.batch_size=many", "train.batch_size"),
    ("train.lr=fast", "train.lr"),
    ("method.name=dreambooth", "method.name"),
    ("train.batch_size=0", "train.batch_size"),
    ("data.validation_size=1.5", "data.validation_size"),
    ("task.threshold=sometimes", "task.threshold"),
])
def test_wrong_type_or_value_names_the_key(override, key):
    with pytest.raises(ConfigError) as err:
        checked_config(build_config(overrides=[override]))  # task keys are the task's to check
    assert key in str(err.value)


def test_setting_into_a_scalar_is_an_error():
    with pytest.raises(ConfigError, match="not a section"):
        build_config({"name": "x"}, ["name.sub=1"])


def test_split_sizes_must_leave_training_rows():
    with pytest.raises(ConfigError, match="below 1"):
        build_config(overrides=["data.validation_size=0.5", "data.test_size=0.5"])


def test_to_yaml_round_trips():
    cfg = Config()
    assert build_config(yaml.safe_load(cfg.to_yaml())) == cfg
    custom = build_config(overrides=["name=x", "train.lr=3e-5", "method.name=lora", "task.threshold=tune",
                                     "method.lora_target_modules=[query, value]", "data.text_column=2"])
    back = build_config(yaml.safe_load(custom.to_yaml()))
    assert back == custom
    assert back.method.lora_target_modules == ["query", "value"]
    assert back.task.threshold == "tune"


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_config_file_must_be_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(path)


def test_invalid_yaml_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml"):
        load_config(path)


def test_empty_config_file_gives_defaults(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_config(path) == Config()


def test_example_configs_validate():
    examples = sorted(EXAMPLES.glob("**/*.yaml")) + sorted(EXAMPLES.glob("**/*.yml"))
    for path in examples:
        cfg = load_config(path)
        assert isinstance(cfg, Config), path


@pytest.mark.parametrize(("given", "meant"), [
    ("train.learning_rate=1e-4", "train.lr"), ("train.num_train_epochs=2", "train.epochs"),
    ("train.per_device_train_batch_size=8", "train.batch_size"), ("train.warmup_ratio=0.1", "train.warmup"),
    ("model.model_name_or_path=x", "model.name"), ("train.max_seq_length=64", "data.max_length"),
    ("train.gradient_accumulation_steps=2", "train.grad_accum"),
])
def test_other_tools_names_suggest_lmtune_keys(given, meant):
    with pytest.raises(ConfigError, match=f"did you mean '{meant}'"):
        build_config(overrides=[given])
