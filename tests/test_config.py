"""Config validation: every mistake is reported with file, line and key, before any work starts."""

import pytest
from conftest import SAMPLE

from pipeline.config import ConfigError
from winnow.config import load_config


def _write(tmp_path, body: str):
    path = tmp_path / "c.yaml"
    path.write_text(body)
    return path


GOOD_INPUT = f"input:\n  - path: {SAMPLE / 'en' / 'ccnet-head.jsonl'}\n    source: ccnet\noutput: out\n"


def test_unknown_stage_key_names_file_line_and_suggests(tmp_path):
    """A typo in a stage setting fails with its line number and the key it probably meant."""
    path = _write(tmp_path, GOOD_INPUT + "stages:\n  - name: normalize\n  - name: min_length\n    min_char: 10\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert f"{path}:8: stages[1].min_char: unknown key 'min_char' (did you mean 'min_chars'?)" in message


def test_wrong_type_is_reported_with_the_value(tmp_path):
    """A value of the wrong type names the key and shows what was given."""
    path = _write(tmp_path, GOOD_INPUT + "ingest:\n  rows_per_shard: many\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert f"{path}:6: ingest.rows_per_shard:" in str(err.value)
    assert "'many'" in str(err.value)


def test_missing_input_file_is_named(tmp_path):
    """An input path that matches nothing is an error naming the path and its line."""
    path = _write(tmp_path, "input:\n  - path: no/such/file.jsonl\n    source: x\noutput: out\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert f"{path}:2: input[0].path: no such file, folder or glob match: no/such/file.jsonl" in str(err.value)


def test_missing_required_key_and_unknown_stage(tmp_path):
    """Required keys have no defaults; unknown stage names get a suggestion."""
    with pytest.raises(ConfigError, match=r"output: required key is missing"):
        load_config(_write(tmp_path, f"input:\n  - path: {SAMPLE}\n    source: x\n"))
    with pytest.raises(ConfigError, match=r"unknown stage 'normalise' \(did you mean 'normalize'\?\)"):
        load_config(_write(tmp_path, GOOD_INPUT + "stages:\n  - name: normalise\n"))


def test_invalid_setting_value_is_rejected(tmp_path):
    """Cross-field rules are checked too: max_chars must exceed min_chars."""
    path = _write(tmp_path, GOOD_INPUT + "stages:\n  - name: min_length\n    min_chars: 100\n    max_chars: 10\n")
    with pytest.raises(ConfigError, match="max_chars"):
        load_config(path)


def test_default_config_is_valid_and_orders_stages():
    """The shipped default config loads; stage folders carry their order."""
    cfg = load_config("configs/default.yaml")
    assert [s.folder for s in cfg.stages] == ["01_url_filter", "02_normalize", "03_min_length", "04_langid", "05_heuristics",
                                                "06_exact_dedup", "07_minhash_dedup", "08_decontaminate", "09_quality", "10_safety", "11_weights", "12_export"]
    assert cfg.stages[0].config_hash != cfg.stages[1].config_hash


def test_overrides_replace_input_and_output(tmp_path):
    """--input and --output override the config."""
    cfg = load_config("configs/default.yaml", input_override=str(SAMPLE / "zh"), output_override=str(tmp_path / "o"))
    assert [i.source for i in cfg.pipeline.input] == ["zh"]
    assert cfg.pipeline.output == str(tmp_path / "o")
