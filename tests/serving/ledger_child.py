"""A selection run in its own process, for the crash and concurrency tests.

usage: ledger_child.py LEDGER_URL RUN_ID OUT_DIR CAMPAIGN_PRODUCT MODE [MARKER]
MODE "crash": after the decisions rows are written (transaction still open) touch MARKER and
hang, so the parent can SIGKILL the process mid-run. MODE "slow": pause after reading the
contact history, so two runs overlap exactly where a missing lock would let both pass a cap.
"""

from __future__ import annotations

import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from serving_world import adult, build_world, select

from serving import batch
from serving.config import Campaign, ServingConfig

N_CUSTOMERS = 40


def world(product: str):  # type: ignore[no-untyped-def]
    """Adults with one contact 10 days ago: under the default cap of 2, one more is allowed."""
    specs = [adult(history=[("other", "email", 10, None)]) for _ in range(N_CUSTOMERS)]
    camp = Campaign(
        id=f"camp-{product}",
        product=product,
        channels=("email",),
        start=date(2026, 1, 1),
        end=date(2026, 12, 31),
        capacity={"email": 1000},
        min_propensity=0.1,
        control_share=0.0,
    )
    return build_world(specs, [camp], ServingConfig())


def main() -> None:
    url, run_id, out, product, mode = sys.argv[1:6]
    marker = Path(sys.argv[6]) if len(sys.argv) > 6 else None
    real_insert, real_read = batch.insert_frame, batch.read_history

    def insert(conn, table, frame):  # type: ignore[no-untyped-def]
        real_insert(conn, table, frame)
        if mode == "crash" and table.name == "decisions" and marker is not None:
            marker.touch()
            time.sleep(120)

    def read(conn, as_of, *days):  # type: ignore[no-untyped-def]
        frame = real_read(conn, as_of, *days)
        if mode == "slow":
            time.sleep(1.0)
        return frame

    batch.insert_frame, batch.read_history = insert, read
    w = world(product)
    summary = select(w, url, run_id, Path(out))  # runs through the patched batch functions
    print(summary.n("selected"))


if __name__ == "__main__":
    main()
