"""The models a real-time service serves, reloaded when the registry alias moves."""

from __future__ import annotations

import logging
import threading

from features.config import FeatureConfig
from features.errors import ModelNotFoundError
from models.bundle import ModelBundle
from serving.pipeline import check_models

log = logging.getLogger(__name__)


class ServedModels:
    """The served bundles by product, swapped atomically when the registry alias moves."""

    def __init__(
        self,
        products: list[str],
        alias: str,
        tracking_uri: str,
        feature_config: FeatureConfig | None = None,
    ) -> None:
        self.products, self.alias, self.tracking_uri = products, alias, tracking_uri
        self.feature_config = feature_config or FeatureConfig()
        self._bundles: dict[str, ModelBundle] = {}
        self._lock = threading.Lock()  # one reload at a time; readers never wait
        self.reload()

    @property
    def bundles(self) -> dict[str, ModelBundle]:
        return self._bundles  # one reference read: a request sees the old or the new set

    def versions(self) -> dict[str, str]:
        return {p: str(b.version) for p, b in self._bundles.items()}

    def _registry_versions(self) -> dict[str, str]:
        from models.registry import model_version

        out = {}
        for product in self.products:
            try:
                out[product] = model_version(product, self.alias, self.tracking_uri)
            except ModelNotFoundError:
                continue
        return out

    def reload(self) -> bool:
        """Load the bundles whose alias moved; True when anything changed."""
        with self._lock:
            wanted = self._registry_versions()
            current = self.versions()
            if wanted == current:
                return False
            fresh = {p: b for p, b in self._bundles.items() if p in wanted}
            for product, version in wanted.items():
                if current.get(product) != version:
                    fresh[product] = self._load(product)
            # a model trained on other feature settings is refused (the old ones stay served)
            check_models(fresh, self.feature_config)
            self._bundles = fresh
            log.info("serving models %s", {p: b.version for p, b in fresh.items()})
            return True

    def _load(self, product: str) -> ModelBundle:
        from models.registry import load_bundle

        bundle = load_bundle(product, self.alias, self.tracking_uri)
        bundle.estimator.model_.set_params(n_jobs=1)  # few rows: no thread pool
        return bundle
