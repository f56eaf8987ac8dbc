"""`propensity select` and `propensity explain` through the real typer app, on Parquet files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from serving_world import AS_OF, adult, build_world
from typer.testing import CliRunner

from features.errors import ConfigError
from propensity.cli import app
from serving.config import ServingConfig
from serving.ledger import PublishedRunError, RunExistsError

CONFIG = """
[policy]
max_contacts = 2
"""
CAMPAIGNS = """
[[campaigns]]
id = "sav"
product = "savings"
channels = ["email", "post"]
start = 2026-01-01
end = 2026-12-31
capacity = { email = 2, post = 1 }
min_propensity = 0.2
control_share = 0.0
"""


def _data_dir(tmp: Path) -> tuple[Path, Path]:
    specs = [adult(scores=(0.3 + i / 10, 0.1, 0.1, 0.1)) for i in range(5)] + [adult(age=16)]
    world = build_world(specs, [], ServingConfig())
    data = tmp / "data"
    data.mkdir()
    for name in ("transactions", "customers", "products", "consents", "contacts"):
        getattr(world.tables, name).collect().write_parquet(data / f"{name}.parquet")
    scores = tmp / "scores.parquet"
    world.scores.write_parquet(scores)
    return data, scores


def test_select_then_explain(tmp_path: Path) -> None:
    data, scores = _data_dir(tmp_path)
    campaigns = tmp_path / "campaigns.toml"
    campaigns.write_text(CAMPAIGNS)
    config = tmp_path / "propensity.toml"
    config.write_text(CONFIG)
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    args = [
        "select",
        str(data),
        "--as-of",
        AS_OF.isoformat(),
        "--scores",
        str(scores),
        "--campaigns",
        str(campaigns),
        "--ledger-url",
        url,
        "--run-id",
        "r1",
        "--config",
        str(config),
        "--work-dir",
        str(tmp_path / "work"),
        "--no-reasons",
        "--json",
    ]
    runner = CliRunner()
    dry = runner.invoke(app, [*args[:-2], "--dry-run", "--no-reasons", "--json"])
    assert dry.exit_code == 0, dry.output
    assert not (tmp_path / "ledger.sqlite").exists() and not (tmp_path / "work" / "out").exists()
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    selected = {(r["channel"], r["n"]) for r in summary["counts"] if r["reason"] == "selected"}
    assert selected == {("email", 2), ("post", 1)}
    assert (tmp_path / "work" / "out" / "r1" / "email.csv").read_text().count("\n") == 3
    assert (tmp_path / "work" / "reports" / "r1.html").exists()  # select writes the report too
    again = runner.invoke(app, args)
    assert isinstance(again.exception, RunExistsError)
    refused = runner.invoke(app, [*args, "--replace"])  # published: append-only
    assert isinstance(refused.exception, PublishedRunError)
    shown = runner.invoke(app, ["explain", "c004", "--ledger-url", url])
    assert shown.exit_code == 0 and "selected" in shown.output and "r1" in shown.output


@pytest.mark.parametrize("bad", ["2026-13-01", "yesterday"])
def test_bad_date_is_a_usage_error(bad: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["select", str(tmp_path), "--as-of", bad, "--scores", "x"])
    assert isinstance(result.exception, ConfigError)  # main() turns it into exit 2
    assert result.exception.exit_code == 2 and "not a date" in str(result.exception)


def test_a_run_with_no_active_campaign_is_a_normal_empty_run(tmp_path: Path) -> None:
    """Exit 0, nothing selected, and the summary and report say why (not a traceback)."""
    data, scores = _data_dir(tmp_path)
    campaigns = tmp_path / "campaigns.toml"
    campaigns.write_text(CAMPAIGNS.replace("2026-01-01", "2025-01-01").replace(
        "2026-12-31", "2025-06-30"))  # fmt: skip
    work = tmp_path / "work"
    args = ["select", str(data), "--as-of", AS_OF.isoformat(), "--scores", str(scores),
            "--campaigns", str(campaigns), "--work-dir", str(work),
            "--no-reasons", "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert not [r for r in summary["counts"] if r["reason"] == "selected"]
    assert "0 of 1 campaign(s) active" in " ".join(summary["notes"])
    report = (work / "reports" / f"run-{AS_OF.isoformat()}.html").read_text()
    assert "0 of 1 campaign(s) active" in report


def test_select_checks_its_inputs_before_opening_any_store(tmp_path: Path) -> None:
    """A missing scores file is exit 2 naming the option; nothing is created in the work dir."""
    data, _ = _data_dir(tmp_path)
    work = tmp_path / "work"
    args = ["select", str(data), "--as-of", AS_OF.isoformat(), "--scores",
            str(tmp_path / "missing.parquet"), "--work-dir", str(work)]  # fmt: skip
    result = CliRunner().invoke(app, args, env={"MLFLOW_TRACKING_URI": ""})
    assert isinstance(result.exception, ConfigError) and result.exception.exit_code == 2
    assert "--scores" in str(result.exception)
    assert not (work / "mlflow.db").exists()
