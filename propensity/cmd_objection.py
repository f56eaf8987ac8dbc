"""CLI command: `propensity objection record CUSTOMER_ID`, the moment the customer objects.

An objection to payment-data marketing (GDPR art. 21) takes effect at once, not with the
bank's next delivery of its consents table: it goes into the objection register of the
ledger (`serving.objections`), the customer's online profile is deleted, the real-time
service refuses their next event and every batch path leaves them out
(`features.consent.with_objections`, the one rule; docs/realtime.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from propensity.progress import make_console

console = make_console()


def register(app: typer.Typer) -> None:
    """Add the `objection` group to the app."""
    group = typer.Typer(
        help="Objections to payment-data marketing, recorded the moment they are made.",
        no_args_is_help=True,
    )
    app.add_typer(group, name="objection")

    @group.command("record")
    def record_cmd(
        customer_id: str = typer.Argument(..., help="the customer who objects"),
        config_path: Path = typer.Option(None, "--config", help="propensity.toml (optional)"),
        work_dir: Path = typer.Option(None, "--work-dir", help="default: propensity-work"),
        ledger_url: str = typer.Option(None, "--ledger-url", help="default: SQLite in work dir"),
        as_json: bool = typer.Option(False, "--json", help="print what was recorded as JSON"),
    ) -> None:
        """Record an objection now: no profiling, scoring, training or offer from now on."""
        from features.ids import validate_customer_id
        from propensity.config import load_config
        from serving import ledger as lg
        from serving.online_store import record_objection

        validate_customer_id(customer_id, "CUSTOMER_ID")  # before any file is opened
        config = load_config(config_path).override(
            **{"work_dir": work_dir, "ledger.url": ledger_url}
        )
        url = lg.ledger_url(config.ledger.url, config.work_dir)
        done = record_objection(
            url,
            customer_id,
            "cli",
            timezone=config.data.timezone,
            lock_timeout=config.serving.lock_timeout_seconds,
        )
        if as_json:
            console.print_json(json.dumps(done))
            return
        profile = "deleted" if done["online_profile_deleted"] else "none held"
        console.print(
            f"objection of customer {customer_id} recorded at {done['recorded_at']}; "
            f"online profile: {profile}. From now on they are not profiled, scored, trained "
            "on or offered anything (a newer consents row of the bank lifts it)."
        )
