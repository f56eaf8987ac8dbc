"""`propensity` in a child process, paused at one exact point so the parent can kill it.

usage: cli_child.py HOOK MARKER [FSIZE_BYTES] -- propensity arguments...

HOOK is where the run stops, after touching MARKER, for the parent's SIGKILL:
  none          run normally
  before_commit after the run, decisions and contacts rows are written, before the commit
  after_commit  after the commit, before the staged files are moved into place
  after_rename  after the run's own files are in place (`--run-id`), before it is marked
                published (a recovery of an earlier run first does not stop)
  in_recovery   while a committed run is published from the ledger (files staged, not moved)
  hold          inside the locked transaction after reading history: hold the lock for
                HOLD_SECONDS (env, default 120) and then carry on
FSIZE_BYTES sets RLIMIT_FSIZE (a full disk for every file this process writes).
"""

from __future__ import annotations

import os
import resource
import signal
import sys
import time
from pathlib import Path


def _pause(marker: Path, seconds: float = 120.0) -> None:
    marker.touch()
    time.sleep(seconds)


def _hook(hook: str, marker: Path, run_id: str | None) -> None:
    from serving import batch, publish

    if hook == "before_commit":
        real_write = batch._write_run

        def write_run(*args, **kwargs):  # type: ignore[no-untyped-def]
            real_write(*args, **kwargs)
            _pause(marker)

        batch._write_run = write_run
    elif hook == "after_commit":
        real_finish = batch.finish

        def finish(*args, **kwargs):  # type: ignore[no-untyped-def]
            _pause(marker)
            real_finish(*args, **kwargs)

        batch.finish = finish
    elif hook == "after_rename":
        real_move = publish.move_into_place

        def move(staging, final):  # type: ignore[no-untyped-def]
            moved = real_move(staging, final)
            if final.name == run_id:
                _pause(marker)
            return moved

        publish.move_into_place = move
    elif hook == "in_recovery":
        real_files = publish.write_files

        def files(*args, **kwargs):  # type: ignore[no-untyped-def]
            real_files(*args, **kwargs)
            _pause(marker)

        publish.write_files = files
    elif hook == "hold":
        real_read = batch.read_history

        def read(*args, **kwargs):  # type: ignore[no-untyped-def]
            frame = real_read(*args, **kwargs)
            _pause(marker, float(os.environ.get("HOLD_SECONDS", "120")))
            return frame

        batch.read_history = read
    elif hook != "none":
        raise SystemExit(f"unknown hook {hook}")


def main() -> None:
    split = sys.argv.index("--")
    head, args = sys.argv[1:split], sys.argv[split + 1 :]
    hook, marker = head[0], Path(head[1])
    if len(head) > 2:
        size = int(head[2])
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    run_id = args[args.index("--run-id") + 1] if "--run-id" in args else None
    _hook(hook, marker, run_id)
    from propensity.cli import main as cli_main

    sys.argv = ["propensity", *args]
    cli_main()


if __name__ == "__main__":
    main()
