"""`propensity serve` runs `serving.decide.decide` on polars' in-memory engine (its frames have
a few rows), the batch on the default engine: on random inputs both give identical decisions.
This is the guard against the real-time path drifting from the batch's rules."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
from hypothesis import event, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from features.schemas import CHANNELS
from serving.config import ContactPolicy, ServingConfig
from serving.contact_policy import HISTORY_SCHEMA
from serving.decide import Inputs, decide
from tests.serving.serving_world import AS_OF, PRODUCTS, campaign_lists

IDS = [f"c{i:02d}" for i in range(8)]
SCORES = {"customer_id": pl.String, "product": pl.String, "propensity": pl.Float64,
          "model_version": pl.String}  # fmt: skip
FACTS = {"customer_id": pl.String, "age": pl.Int32, "is_current": pl.Boolean,
         "child_benefit": pl.Boolean}  # fmt: skip


@st.composite
def decide_inputs(draw: st.DrawFn) -> Inputs:
    ids = draw(st.lists(st.sampled_from(IDS), min_size=1, max_size=8, unique=True))
    scored = [
        (c, p, draw(st.floats(0.0, 1.0)), "1")
        for c in ids
        for p in draw(st.lists(st.sampled_from(PRODUCTS), min_size=2, max_size=4, unique=True))
    ]
    facts = [
        (c, draw(st.integers(12, 80)), draw(st.booleans()), draw(st.booleans()))
        for c in ids
        if draw(st.booleans()) or c == ids[0]  # some customers have no facts row
    ]
    held = [(c, p) for c, p, _, _ in scored if draw(st.integers(0, 4)) == 0]
    history = [
        (
            draw(st.sampled_from(ids)),
            draw(st.sampled_from(PRODUCTS)),
            draw(st.sampled_from(CHANNELS)),
            datetime.combine(AS_OF, datetime.min.time())
            + timedelta(days=draw(st.integers(-120, 5)), hours=9),
            draw(st.sampled_from(["sent", "declined", "accepted"])),
        )
        for _ in range(draw(st.integers(0, 10)))
    ]
    return Inputs(
        scores=pl.LazyFrame(scored, schema=SCORES, orient="row"),
        facts=pl.LazyFrame(facts, schema=FACTS, orient="row"),
        held=pl.LazyFrame(
            held, schema={"customer_id": pl.String, "product": pl.String}, orient="row"
        ).with_columns(holds=pl.lit(True)),
        distress=pl.LazyFrame(
            {"customer_id": ids, "in_distress": [draw(st.booleans()) for _ in ids]},
            schema={"customer_id": pl.String, "in_distress": pl.Boolean},
        ),
        consents=pl.LazyFrame(
            {"customer_id": ids, **{ch: [draw(st.booleans()) for _ in ids] for ch in CHANNELS}},
            schema={"customer_id": pl.String, **dict.fromkeys(CHANNELS, pl.Boolean)},
        ),
        history=pl.LazyFrame(history, schema=HISTORY_SCHEMA, orient="row"),
    )


@settings(max_examples=60, deadline=None)
@given(
    inputs=decide_inputs(),
    campaigns=campaign_lists(),
    share=st.sampled_from([0.0, 0.5]),
    max_contacts=st.integers(1, 3),
    max_phone=st.integers(0, 2),
)
def test_in_memory_and_streaming_engines_decide_alike(
    inputs: Inputs, campaigns: list, share: float, max_contacts: int, max_phone: int
) -> None:
    config = ServingConfig(
        policy=ContactPolicy(max_contacts=max_contacts, max_phone=max_phone),
        global_control_share=share,
    )
    with pl.Config(engine_affinity="streaming"):
        batch = decide(inputs, campaigns, config, AS_OF)
    with pl.Config(engine_affinity="in-memory"):
        served = decide(inputs, campaigns, config, AS_OF)
    assert_frame_equal(served.decisions, batch.decisions)
    event(f"decisions: {min(served.decisions.height, 3)}+")
    assert_frame_equal(served.below_threshold, batch.below_threshold)
