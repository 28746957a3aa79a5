"""Golden events: one encoded Kafka record of every event type, written once by a released version.

Each file (`tests/golden/events/v1/<event>.json`) holds what a consumer receives: the topic, the key,
the CloudEvents headers and the protobuf value bytes (base64), plus the message's fields as JSON (proto
field names), as the version that wrote it saw them. Every field is set (nested messages, repeated
fields and maps too), each scalar to a value derived from its name or number, so a field that is later
removed, renumbered, retyped or renamed decodes differently.

tests/unit/kernel/test_golden_events.py decodes every file with today's code and compares the fields:
that is the consumer contract. Files are never rewritten: this script writes only the missing ones (a
new event type). Write them with the code of a release, e.g. from a worktree of its commit:
    git worktree add /tmp/rel <commit> && cd /tmp/rel && PYTHONPATH=.:protos python <this file> --out <repo>/tests/golden/events/v1

Usage: python scripts/ci/golden_events.py [--out DIR]
"""

from __future__ import annotations

import argparse
import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from services.kernel.events import EVENT_TYPES, Outgoing, encode
from services.kernel.settings import REPO_ROOT

OUT = REPO_ROOT / "tests" / "golden" / "events" / "v1"
SUBJECT = "golden-subject"
SOURCE = "golden/writer"
TRACEPARENT = "00-" + "4bf92f3577b34da6a3ce929d0e0e4736" + "-" + "00f067aa0ba902b7" + "-01"
_MAX_DEPTH = 4


def _scalar(field: Any, salt: int) -> Any:
    """A value for one scalar field (a FieldDescriptor), distinct per field and per position (salt)."""
    n = field.number * 10 + salt
    t = field.type
    if t == FieldDescriptor.TYPE_STRING:
        return f"{field.name}-{salt}"
    if t == FieldDescriptor.TYPE_BYTES:
        return f"{field.name}-{salt}".encode() + bytes([0, 255, salt])
    if t == FieldDescriptor.TYPE_BOOL:
        return True
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return n + 0.25  # exact in a float too
    if t == FieldDescriptor.TYPE_ENUM:
        return field.enum_type.values[-1].number
    if t in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64,
             FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return (1 << 40) + n  # beyond 32 bits: a narrowed type would not hold it
    return n


def fill(message: Message, depth: int = 0) -> Message:
    """Set every field of a message (nested messages too, to a bounded depth)."""
    for field in message.DESCRIPTOR.fields:
        target = getattr(message, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_field, value_field = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
            for salt in (1, 2):
                key = _scalar(key_field, salt)
                if value_field.message_type is not None:
                    fill(target[key], depth + 1)
                else:
                    target[key] = _scalar(value_field, salt)
        elif field.is_repeated:
            for salt in (1, 2):
                if field.message_type is not None:
                    if depth < _MAX_DEPTH:
                        fill(target.add(), depth + 1)
                else:
                    target.append(_scalar(field, salt))
        elif field.message_type is not None:
            if depth < _MAX_DEPTH:
                fill(target, depth + 1)
        else:
            setattr(message, field.name, _scalar(field, 0))
    return message


def golden(event: str, cls: type[Message], written_by: str) -> dict[str, Any]:
    """The golden file's content for one event type."""
    message = fill(cls())
    record = encode(Outgoing(message, SUBJECT), topic=f"tuneline.{event}", source=SOURCE, trace_headers={"traceparent": TRACEPARENT})
    return {
        "event": event,
        "written_by": written_by,
        "topic": record.topic,
        "key": record.key.decode(),
        "headers": [[k, v.decode()] for k, v in record.headers],
        "value": base64.b64encode(record.value).decode(),
        "fields": MessageToDict(message, preserving_proto_field_name=True),
    }


def _written_by() -> str:
    done = subprocess.run(["git", "log", "-1", "--format=%h %cs"], capture_output=True, text=True, check=False)
    return f"tuneline.events.v1 at {done.stdout.strip() or 'an unknown commit'}"


def main(argv: list[str] | None = None) -> int:
    """Write the golden file of every event type that has none."""
    parser = argparse.ArgumentParser(description="Write the missing golden events (never rewrites one).")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    written_by = _written_by()
    for event, cls in sorted(EVENT_TYPES.items()):
        path = args.out / f"{event}.json"
        if path.exists():
            continue
        path.write_text(json.dumps(golden(event, cls, written_by), indent=2, sort_keys=True) + "\n")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
