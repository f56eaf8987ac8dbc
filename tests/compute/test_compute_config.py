"""The `[compute]` section, the bucket hash and the promise that the local scheduler never
imports Dask (these tests need no Dask)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from features.errors import ConfigError
from propensity.config import load_config
from serving.buckets import bucket_of


def test_bucket_hash_is_fixed_by_the_project() -> None:
    """Golden values: a library upgrade must never move a customer to another bucket."""
    ids = ["C00000001", "C00000002", "C00012345", "klant-é"]
    assert bucket_of(ids, 8).tolist() == GOLDEN_BUCKETS
    assert bucket_of(ids, 1).tolist() == [0, 0, 0, 0]


GOLDEN_BUCKETS = [4, 6, 7, 0]


def test_compute_config_is_checked_and_names_the_key(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[compute]\nscheduler = "tcp://10.0.0.5:8786"\nworkers = 3\n')
    assert load_config(good).compute.scheduler == "tcp://10.0.0.5:8786"
    assert load_config(None).compute.scheduler == "local"
    bad = tmp_path / "bad.toml"
    bad.write_text('[compute]\nscheduler = "threads"\n')
    with pytest.raises(ConfigError, match=r"compute\.scheduler.*tcp://"):
        load_config(bad)


def test_local_scheduler_never_imports_dask(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path\n"
        "from propensity.compute import ComputeConfig, open_compute\n"
        "import propensity.config, serving.buckets, serving.pipeline\n"
        "with open_compute(ComputeConfig(), Path('.')) as c: assert c is None\n"
        "assert 'distributed' not in sys.modules and 'dask' not in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_unreachable_scheduler_is_a_config_error_naming_the_address() -> None:
    pytest.importorskip("distributed")
    from propensity.compute import ComputeConfig, open_compute

    config = ComputeConfig(scheduler="tcp://127.0.0.1:9", connect_timeout=1)
    with (
        pytest.raises(ConfigError, match=r"tcp://127\.0\.0\.1:9.*not reachable"),
        open_compute(config, Path(".")),
    ):
        pass
