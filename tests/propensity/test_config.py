"""The one config file: `propensity init` writes every default; unknown keys are errors that
name the key; flags override the file."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from features.errors import ConfigError
from propensity.config import AppConfig, load_config, validate_config
from propensity.init_config import render_default_config, write_default_config


def test_init_file_round_trips_to_the_defaults(tmp_path: Path) -> None:
    path = write_default_config(tmp_path / "propensity.toml")
    assert load_config(path) == AppConfig()
    text = path.read_text()
    for section in ("[training.lightgbm]", "[policy]", "[[campaigns]]", "[[products]]", "[ledger]"):
        assert section in text
    with pytest.raises(ConfigError, match="exists"):
        write_default_config(path)


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[training.lightgbm]\nnum_leavs = 3\n", "training.lightgbm.num_leavs: unknown key"),
        ("[policy]\nmax_contacts = -1\n", "policy.max_contacts"),
        ("colour = 'blue'\n", "colour: unknown key"),
        ("[[campaigns]]\nid = 'x'\nproduct = 'savings'\n", "campaigns.0.channels"),
    ],
)
def test_bad_keys_are_named(tmp_path: Path, toml: str, key: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert key in str(info.value)


def test_overrides_win_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text("[training]\nhorizon_days = 60\n[synthetic]\ncustomers = 500\n")
    config = load_config(path).override(**{"training.horizon_days": 30, "synthetic.seed": None})
    assert config.training.horizon_days == 30
    assert config.synthetic.customers == 500
    assert config.synthetic.seed == AppConfig().synthetic.seed


def test_shared_sections_are_not_duplicated_in_serving() -> None:
    data = tomllib.loads(render_default_config())
    assert "policy" not in data["serving"]
    with pytest.raises(ConfigError, match="top level"):
        validate_config({"serving": {"policy": {"max_contacts": 9}}}, "x")


def test_cli_config_error_exits_2_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[policy]\nmax_contactz = 1\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "propensity.cli",
            "run",
            "--config",
            str(path),
            "--work-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2, proc.stderr
    assert "policy.max_contactz: unknown key" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("command", "option"),
    [("run", "--as-of"), ("train", "--test-as-of"), ("features", "--as-of")],
)
def test_a_bad_date_option_exits_2_naming_the_option(
    tmp_path: Path, command: str, option: str
) -> None:
    args = [command, option, "2026-13-01"]
    args += [str(tmp_path)] if command in ("train", "features") else []
    args += ["--work-dir", str(tmp_path)] if command != "features" else []
    proc = subprocess.run(
        [sys.executable, "-m", "propensity.cli", *args], capture_output=True, text=True
    )
    assert proc.returncode == 2, proc.stderr
    assert f"{option} '2026-13-01' is not a date YYYY-MM-DD" in proc.stderr
    assert "Traceback" not in proc.stderr


CAMPAIGN = (
    '[[campaigns]]\nid = "loan-1"\nproduct = "{product}"\nchannels = ["email"]\n'
    "start = 2026-01-01\nend = 2026-12-31\ncapacity = {{email = 10}}\n"
)


def test_campaign_for_a_product_without_products_entry_is_an_error_at_load(
    tmp_path: Path,
) -> None:
    path = tmp_path / "p.toml"
    path.write_text(CAMPAIGN.format(product="loan"))
    with pytest.raises(ConfigError, match=r"campaigns\[loan-1\]\.product 'loan'"):
        load_config(path)
    proc = subprocess.run(  # exit 2 before anything is generated or trained
        [sys.executable, "-m", "propensity.cli", "run", "--config", str(path), "--work-dir",
         str(tmp_path / "w")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and "no [[products]] entry" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "w").exists()
    loan = '[[products]]\nname = "loan"\ncredit = true\n'
    path.write_text(CAMPAIGN.format(product="loan") + loan)
    assert load_config(path).campaigns[0].product == "loan"


def test_campaigns_file_holds_campaigns_only(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[policy]\nmax_contacts = 9\n" + CAMPAIGN.format(product="savings"))
    with pytest.raises(ConfigError, match=r"only \[\[campaigns\]\].*propensity.toml"):
        AppConfig().with_campaigns_file(path)
    path.write_text(CAMPAIGN.format(product="savings"))
    assert [c.id for c in AppConfig().with_campaigns_file(path).campaigns] == ["loan-1"]
