"""Identities, the event codec and the goal schema: the contracts every service relies on."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.errors import ConfigError, DecodeError, UnknownEventType
from services.kernel.events import EVENT_TYPES, Outgoing, ce_type, decode, encode
from services.kernel.goal import load_goal, parse_goal
from services.kernel.ids import digest_files, uuid7

REPO = Path(__file__).resolve().parents[3]


def test_uuid7_is_version_7_and_time_ordered() -> None:
    ids = [uuid7() for _ in range(2000)]
    assert all(uuid.UUID(i).version == 7 for i in ids)
    assert ids == sorted(ids), "UUIDv7 ids must sort in creation order"
    assert len(set(ids)) == len(ids)


def test_file_digest_depends_on_names_order_and_bytes(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"one")
    b.write_bytes(b"two")
    base = digest_files([("a", a), ("b", b)])
    assert digest_files([("b", b), ("a", a)]) != base
    assert digest_files([("a", a), ("c", b)]) != base
    b.write_bytes(b"twO")
    assert digest_files([("a", a), ("b", b)]) != base


def test_every_event_type_has_a_topic_and_round_trips() -> None:
    assert len(EVENT_TYPES) == 23
    for name, cls in EVENT_TYPES.items():
        rec = encode(Outgoing(cls(), "subj"), topic=f"tuneline.{name}", source="test/1")
        inc = decode(rec.value, rec.headers, topic=rec.topic)
        assert inc.type == name and inc.subject == "subj" and inc.source == "test/1"


def test_record_carries_all_cloudevents_headers_and_the_trace() -> None:
    tp = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"
    msg = ev.DatasetPublished(dataset_name="banking77", uri="datasets/banking77/train.csv", publisher="team-a")
    rec = encode(Outgoing(msg, "banking77"), topic="t", source="cli/1", trace_headers={"traceparent": tp})
    headers = {k: v.decode() for k, v in rec.headers}
    assert headers["ce_specversion"] == "1.0" and headers["ce_type"] == "tuneline.dataset.published.v1"
    assert headers["content-type"] == "application/protobuf" and headers["ce_subject"] == "banking77"
    assert uuid.UUID(headers["ce_id"]).version == 7 and headers["ce_time"].endswith("Z")
    assert rec.key == b"banking77"
    inc = decode(rec.value, rec.headers)
    assert inc.traceparent == tp and inc.message == msg


def test_decode_refuses_records_that_are_not_tuneline_events() -> None:
    rec = encode(Outgoing(ev.GoalApplied(goal_name="g"), "g"), topic="t", source="s")
    with pytest.raises(DecodeError, match="missing headers"):
        decode(rec.value, [h for h in rec.headers if h[0] != "ce_id"])
    with pytest.raises(UnknownEventType):
        decode(rec.value, [(k, b"tuneline.nope.v1" if k == "ce_type" else v) for k, v in rec.headers])
    with pytest.raises(UnknownEventType, match="carries run.finished"):
        decode(rec.value, rec.headers, expect="run.finished")
    with pytest.raises(DecodeError, match="not a valid GoalApplied"):
        decode(b"\xff\xff\xff\xff", rec.headers)


@pytest.mark.parametrize("when", [b"", b"yesterday", b"2026-13-01T00:00:00Z", b"2026-12-02T10:00:00"])
def test_a_bad_ce_time_is_a_decode_error_not_now(when: bytes) -> None:
    rec = encode(Outgoing(ev.GoalApplied(goal_name="g"), "g"), topic="t", source="s")
    with pytest.raises(DecodeError, match="ce_time"):
        decode(rec.value, [(k, when if k == "ce_time" else v) for k, v in rec.headers])


def test_headers_the_codec_does_not_read_may_hold_any_bytes() -> None:
    rec = encode(Outgoing(ev.GoalApplied(goal_name="g"), "g"), topic="t", source="s")
    assert cast(ev.GoalApplied, decode(rec.value, [*rec.headers, ("x-opaque", b"\xff\xfe")]).message).goal_name == "g"
    with pytest.raises(DecodeError, match="ce_subject"):
        decode(rec.value, [(k, b"\xff" if k == "ce_subject" else v) for k, v in rec.headers])


@settings(max_examples=300, deadline=None)
@given(value=st.binary(max_size=300), name=st.sampled_from(sorted(EVENT_TYPES)))
def test_decoding_arbitrary_bytes_fails_only_with_a_decode_error(value: bytes, name: str) -> None:
    headers = [("ce_specversion", b"1.0"), ("ce_id", b"x"), ("ce_source", b"s"), ("ce_type", ce_type(name).encode()),
               ("ce_time", b"2026-12-02T10:00:00Z")]
    try:
        inc = decode(value, headers)
    except DecodeError:
        return
    assert inc.type == name


def test_example_goal_is_valid_and_versioned_stably() -> None:
    goal = load_goal(REPO / "goals" / "banking77.yaml")
    assert goal.version == load_goal(REPO / "goals" / "banking77.yaml").version
    assert goal.version.startswith("sha256:") and goal.acceptance.accuracy.min == 0.85


def test_goal_errors_name_the_key() -> None:
    raw = {"name": "g", "data": {"dataset": "d"}, "acceptance": {}}
    with pytest.raises(ConfigError, match="acceptance.accuracy: Field required"):
        parse_goal(raw)
    good = load_goal(REPO / "goals" / "banking77.yaml").model_dump(mode="json")
    good["training"]["epochz"] = 3
    with pytest.raises(ConfigError, match="training.epochz: unknown key"):
        parse_goal(good)
    good["training"].pop("epochz")
    good["rollout"]["steps"] = [50, 10]
    with pytest.raises(ConfigError, match="rollout.steps"):
        parse_goal(good)
