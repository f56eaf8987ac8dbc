"""The registered model, as MLflow stores it: its signature holds no excluded feature, it
records the feature settings it was trained with (and scoring with others is refused), and it
is self-contained (pinned requirements, its own code, the `propensity features` table as
input). Real generated bank, real training, real MLflow registry."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from importlib.metadata import packages_distributions
from importlib.metadata import version as dist_version
from pathlib import Path

import pytest

from features.catalogue import catalogue
from features.categories import load_ruleset
from features.config import DistressConfig, FeatureConfig, Rule
from features.errors import ConfigError
from models.bundle import check_feature_config
from models.registry import load_bundle, mlflow_session
from tests.models.small_registry import Registry, small_registry

AS_OF = "2026-03-01"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    return small_registry(tmp_path_factory.mktemp("registry"))


@pytest.fixture(scope="module")
def features_file(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The table `propensity features` writes (the real command, in a subprocess)."""
    out = tmp_path_factory.mktemp("features") / "features.parquet"
    exe = Path(sys.executable).with_name("propensity")
    cmd = [str(exe), "features", str(registry.data_dir), "--as-of", AS_OF, "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return out


def _registered_signatures(uri: str) -> dict[str, list[str]]:
    """`name/version` -> the input column names of every registered model version."""
    from mlflow import MlflowClient
    from mlflow.models import get_model_info

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    out = {}
    with mlflow_session(uri):
        for model in client.search_registered_models():
            for version in client.search_model_versions(f"name = '{model.name}'"):
                info = get_model_info(f"models:/{model.name}/{version.version}")
                out[f"{model.name}/{version.version}"] = info.signature.inputs.input_names()
    return out


def test_no_registered_model_and_no_catalogue_entry_has_an_excluded_feature(registry: Registry):
    ruleset = load_ruleset(FeatureConfig())
    signatures = _registered_signatures(registry.tracking_uri)
    assert signatures, "no registered model to check"
    for model, names in signatures.items():
        assert len(names) > 100, model
        assert ruleset.excluded_columns(names) == [], model
        assert not [n for n in names if "debt" in n or "gambl" in n], model
    catalogue_names = [i.name for i in catalogue(FeatureConfig())]
    assert ruleset.excluded_columns(catalogue_names) == []
    assert not [n for n in catalogue_names if "debt" in n or "gambl" in n]


def test_bundle_keeps_its_feature_settings_and_refuses_others(registry: Registry):
    bundle = load_bundle("savings", tracking_uri=registry.tracking_uri)
    assert bundle.feature_config is not None
    check_feature_config(bundle, FeatureConfig())  # trained with the defaults
    check_feature_config(bundle, FeatureConfig(distress=DistressConfig(window_days=30)))
    refused = {
        "features.windows": FeatureConfig(windows=(30, 60, 365)),
        "features.large_inflow_absolute": FeatureConfig(large_inflow_absolute=5000.0),
        "rule 'rent' was used in training": FeatureConfig(disabled_rules=("rent",)),
        "rule 'my_rent' is new": FeatureConfig(
            rules=(Rule(name="my_rent", category="rent", counterparty=("woonzorg",)),)
        ),
    }
    for setting, config in refused.items():
        with pytest.raises(ConfigError, match="savings") as err:
            check_feature_config(bundle, config)
        assert setting in str(err.value) and "retrain" in str(err.value)
    legacy = bundle.__class__(**{**bundle.__dict__, "feature_config": None})
    check_feature_config(legacy, FeatureConfig(windows=(7,)))  # unknown: logged, not refused


def _third_party_imports(code_dir: Path) -> set[str]:
    """Top-level modules the model's code imports that are not stdlib or the code itself."""
    local = {p.name for p in code_dir.iterdir()}
    found = set()
    for path in code_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {m for m in found - local if m not in sys.stdlib_module_names and m != "__future__"}


SUBPROCESS = """
import json, sys
import mlflow, mlflow.pyfunc, pandas as pd
mlflow.set_tracking_uri(sys.argv[1]); mlflow.set_registry_uri(sys.argv[1])
uri = "models:/propensity-savings@champion"
local = mlflow.artifacts.download_artifacts(uri)
model = mlflow.pyfunc.load_model(local)
frame = pd.read_parquet(sys.argv[2])
scores = model.predict(frame)
project = {n: getattr(m, "__file__", "") for n, m in sys.modules.items()
           if n.split(".")[0] in ("features", "models", "training", "serving", "propensity")}
print(json.dumps({"local": local, "n": len(frame), "scores": [float(s) for s in scores],
                  "requirements": open(mlflow.pyfunc.get_model_dependencies(local)).read(),
                  "project": project, "dtypes": sorted({str(d) for d in frame.dtypes})}))
"""


def test_registered_model_is_self_contained_and_scores_the_features_table(
    registry: Registry, features_file: Path, tmp_path: Path
):
    """In a fresh interpreter, outside the repository and without PYTHONPATH: the model loads
    from the registry by alias, imports the project only from its own code copy, and scores
    the feature table (ints, floats with nulls, booleans, plus the id columns) as written."""
    script = tmp_path / "load.py"
    script.write_text(textwrap.dedent(SUBPROCESS))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MLFLOW_DISABLE_TELEMETRY": "true"}
    done = subprocess.run(
        [sys.executable, str(script), registry.tracking_uri, str(features_file)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"bool", "int64", "float64"} <= set(got["dtypes"])
    assert got["n"] == len(got["scores"]) > 100
    assert all(0.0 < s < 1.0 for s in got["scores"])
    code = Path(got["local"]) / "code"
    assert got["project"] and all(f.startswith(str(code)) for f in got["project"].values())
    bundle = load_bundle("savings", tracking_uri=registry.tracking_uri)
    import polars as pl

    expected = bundle.predict_proba(pl.read_parquet(features_file))
    assert got["scores"] == pytest.approx(list(expected))
    declared = dict(line.split("==") for line in got["requirements"].split())
    distributions = packages_distributions()
    for module in _third_party_imports(code):
        names = distributions[module]
        assert any(declared.get(n) == dist_version(n) for n in names), (module, declared)
    assert declared["mlflow"] == dist_version("mlflow")
