"""Whatever arrives, the ingest ends with the message stored or refused by a
documented rule: never an exception, never an internal error, never a
database it takes for broken. Arbitrary bytes, arbitrary JSON and valid
messages with one field replaced go through the parser and through the real
store path (the writer's commit on a real SQLite file)."""

from __future__ import annotations

import json
import sqlite3
import time
import types
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract import protocol
from gateway.config import load_config
from gateway.ingest import Ingest, Received, is_database_failure
from gateway.store import Store

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "protocol" / "examples"
VALID = [json.loads(p.read_text()) for p in sorted(EXAMPLES.glob("*.json"))]
VALID = [(e["topic"], e["payload"]) for e in VALID if e["valid"] and isinstance(e["payload"], dict)]
FIELDS = sorted({name for spec in protocol.FIELDS.values() for name in spec})

# Letters, digits, markup, control characters and lone surrogates.
TEXT = st.text(st.characters(categories=["L", "M", "N", "P", "S", "Z", "Cc", "Cs"]), max_size=40)
NUMBERS = st.one_of(st.integers(), st.integers(min_value=-2**70, max_value=2**70),
                    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([2**53, 2**63, -2**63 - 1]))
JSON_VALUES = st.recursive(st.none() | st.booleans() | NUMBERS | TEXT,
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
                           max_leaves=20)
TOPICS = st.builds(lambda site, device, kind: f"lonewatch/v1/{site}/{device}/{kind}",
                   st.sampled_from(["hq", "lab", "Hq", ""]),
                   st.sampled_from(["dev-001", "dev-002", "dev-001\n", "<img src=x onerror=alert(1)>", "d\u00fcv"]),
                   st.sampled_from([*protocol.KINDS, "x"]))


@st.composite
def mutated_valid(draw):
    """A valid example with one field set to anything, or removed."""
    topic, body = draw(st.sampled_from(VALID))
    body = dict(body)
    name = draw(st.sampled_from(FIELDS))
    if draw(st.booleans()):
        body[name] = draw(JSON_VALUES)
    else:
        body.pop(name, None)
    return topic, json.dumps(body).encode()


def _dumps(value) -> bytes:
    return json.dumps(value).encode()  # NaN and Infinity come out as such: not JSON


PAYLOADS = st.one_of(st.binary(max_size=2100), JSON_VALUES.map(_dumps),
                     st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=8).map(_dumps))
MESSAGES = st.one_of(st.tuples(TOPICS, PAYLOADS), mutated_valid())


@given(MESSAGES)
@settings(max_examples=1500, deadline=None)
def test_the_parser_accepts_or_refuses_with_a_reason(message):
    topic, payload = message
    try:
        parsed = protocol.parse_message(topic, payload)
    except protocol.Invalid as exc:
        assert exc.reason in protocol.REASONS
        return
    # What it accepts, the store and the desk can hold: UTF-8 text, 64-bit integers.
    protocol.encode(parsed.body).decode("utf-8")
    for value in parsed.body.values():
        if isinstance(value, int):
            assert -2**63 <= value < 2**63


@pytest.fixture(scope="module")
def ingest(tmp_path_factory):
    """The writer's store path on a real database; no broker is needed to commit."""
    tmp = tmp_path_factory.mktemp("ingest")
    (tmp / "gateway.toml").write_text(
        f'[gateway]\ndb = "{tmp / "lonewatch.db"}"\n[mqtt]\nurl = "mqtt://127.0.0.1:1883"\n'
        '[devices]\nregistered = ["dev-001"]\n')
    config = load_config(str(tmp / "gateway.toml"))
    store = Store(config.gateway.db)
    with store.transaction():
        store.register_device("dev-001")
    yield Ingest(config, store, on_committed=None, loop=None)
    store.close()


@given(MESSAGES)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_store_path_stores_or_refuses_every_message(ingest, message):
    topic, payload = message
    counters = ingest.counters
    before = (sum(counters.received.values()), dict(counters.rejected))
    effects = ingest._commit([Received(0, 1, 1, topic, payload, time.time())], [])
    assert effects is not None and ingest.db_ok
    assert counters.rejected["internal_error"] == 0
    stored = sum(counters.received.values()) - before[0]
    refused = sum(counters.rejected.values()) - sum(before[1].values())
    gateway_own = topic.startswith("lonewatch/v1/_gw/")
    assert stored + refused == (0 if gateway_own else 1)


def test_only_the_database_failing_counts_as_the_database(tmp_path):
    """Real SQLite errors: a full or locked database is the database's; a value it
    refuses is the message's."""
    db = sqlite3.connect(tmp_path / "full.db", isolation_level=None, timeout=0)
    db.execute("CREATE TABLE t (x)")
    db.execute("CREATE TABLE u (x UNIQUE)")
    db.execute("PRAGMA max_page_count = 2")
    with pytest.raises(sqlite3.Error) as full:
        db.executemany("INSERT INTO t VALUES (?)", [("x" * 1000,)] * 100)
    assert is_database_failure(full.value)

    other = sqlite3.connect(tmp_path / "full.db", isolation_level=None, timeout=0)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.Error) as locked:
        db.execute("BEGIN IMMEDIATE")
    assert is_database_failure(locked.value)
    other.execute("ROLLBACK")

    with pytest.raises(OverflowError) as overflow:
        db.execute("SELECT ?", (2**63,))
    assert not is_database_failure(overflow.value)
    with pytest.raises(UnicodeEncodeError) as surrogate:
        db.execute("SELECT ?", ("\ud800",))
    assert not is_database_failure(surrogate.value)
    db.execute("DELETE FROM t")
    db.execute("INSERT INTO u VALUES (1)")
    with pytest.raises(sqlite3.IntegrityError) as constraint:
        db.execute("INSERT INTO u VALUES (1)")
    assert not is_database_failure(constraint.value)
    assert not is_database_failure(RecursionError())
    assert is_database_failure(MemoryError())
