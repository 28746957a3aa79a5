"""Consumer contract: every golden event, written by a released version, decodes with today's code.

The files under tests/golden/events/v1/ are Kafka records as the released producers wrote them
(scripts/ci/golden_events.py, never rewritten). Today's codec must decode each one to the same type,
subject and source, and today's messages must read every field the released version wrote, with the
same value: a removed, renumbered, retyped or renamed field fails here. Fields added since then are
simply unset in the old records, which is what additive compatibility means.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.events import EVENT_TYPES, decode

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "events" / "v1"
FILES = sorted(GOLDEN.glob("*.json"))


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_every_event_type_has_a_golden_event() -> None:
    missing = sorted(set(EVENT_TYPES) - {p.stem for p in FILES})
    assert not missing, f"no golden event for {missing}: run `make golden-events` with the released code"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_a_golden_event_decodes_with_todays_code(path: Path) -> None:
    golden = _load(path)
    headers = [(k, v.encode()) for k, v in golden["headers"]]
    incoming = decode(base64.b64decode(golden["value"]), headers, topic=golden["topic"], expect=golden["event"])
    assert (incoming.type, incoming.subject, incoming.source) == (golden["event"], golden["key"], dict(golden["headers"])["ce_source"])
    assert incoming.traceparent == dict(golden["headers"])["traceparent"]
    fields = MessageToDict(incoming.message, preserving_proto_field_name=True)
    lost = sorted(set(golden["fields"]) - set(fields))
    assert not lost, f"{path.name}: today's {type(incoming.message).__name__} no longer reads {lost}"
    changed = sorted(k for k in golden["fields"] if fields[k] != golden["fields"][k])
    assert not changed, f"{path.name}: fields decode to other values today: {changed}"
    assert fields == golden["fields"]


def _renumbered(cls: type[Message], field: str, number: int) -> type[Message]:
    """The message class as it would be generated if `field` had been given another number."""
    proto = descriptor_pb2.FileDescriptorProto()
    cls.DESCRIPTOR.file.CopyToProto(proto)
    [message] = [m for m in proto.message_type if m.name == cls.DESCRIPTOR.name]
    [target] = [f for f in message.field if f.name == field]
    target.number = number
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(cls.DESCRIPTOR.full_name))


def test_the_check_fails_on_a_renumbered_field_and_passes_on_an_added_one() -> None:
    golden = _load(GOLDEN / "run.finished.json")
    value = base64.b64decode(golden["value"])
    moved = _renumbered(ev.RunFinished, "attempts", 99)
    assert "attempts" not in MessageToDict(moved.FromString(value), preserving_proto_field_name=True)
    today = MessageToDict(ev.RunFinished.FromString(value), preserving_proto_field_name=True)
    assert today == golden["fields"]  # adapter_signature (23) came after the golden was written: unset, not lost
