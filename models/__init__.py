"""LightGBM propensity models: product definitions, estimator, calibration, bundles, registry."""
