from __future__ import annotations

from datetime import date, timedelta

import pytest

from features.errors import ConfigError
from training.config import TrainingConfig
from training.splits import choose_snapshots

START, END = date(2024, 5, 1), date(2026, 11, 1)  # 30 months of data; END is exclusive


def test_default_dates_come_from_the_data_and_never_overlap():
    s = choose_snapshots(START, END, TrainingConfig())
    h = timedelta(days=90)
    assert s.test == date(2026, 8, 1)  # latest month start with a complete horizon
    assert s.test + h <= END < s.test + h + timedelta(days=31)
    assert s.validation == date(2026, 5, 1) and s.validation + h <= s.test
    assert len(s.train) == 12 and s.train[-1] == date(2026, 1, 1)
    assert all(t + h <= s.validation for t in s.train)
    assert all(t.day == 1 for t in s.all_dates)
    assert len(set(s.all_dates)) == len(s.all_dates)


def test_short_history_keeps_only_snapshots_with_enough_history():
    s = choose_snapshots(date(2024, 11, 1), END, TrainingConfig(min_history_days=90))
    assert s.train[0] == date(2025, 2, 1)
    assert all(t >= date(2024, 11, 1) + timedelta(days=90) for t in s.train)


def test_overrides_are_used_and_checked():
    s = choose_snapshots(START, END, TrainingConfig(test_as_of=date(2026, 6, 1), horizon_days=30))
    assert (s.test, s.validation) == (date(2026, 6, 1), date(2026, 5, 1))
    assert s.train[-1] == date(2026, 4, 1)
    with pytest.raises(ConfigError, match="2026-09-01"):
        choose_snapshots(START, END, TrainingConfig(test_as_of=date(2026, 9, 1)))
    with pytest.raises(ConfigError, match="overlaps the test"):
        choose_snapshots(START, END, TrainingConfig(validation_as_of=date(2026, 7, 1)))
    with pytest.raises(ConfigError, match="2026-03-01"):
        choose_snapshots(START, END, TrainingConfig(train_as_of=(date(2026, 3, 1),)))


def test_too_short_data_is_a_clear_error():
    with pytest.raises(ConfigError, match="too short"):
        choose_snapshots(date(2026, 1, 1), END, TrainingConfig())


def test_config_is_strict_and_frozen():
    with pytest.raises(ValueError, match="extra"):
        TrainingConfig(horizon=30)  # type: ignore[call-arg]
    config = TrainingConfig()
    with pytest.raises(ValueError):
        config.horizon_days = 30  # type: ignore[misc]
    assert config.lightgbm.n_jobs == 2
    assert config.lightgbm.estimator(seed=3).get_params()["random_state"] == 3
