"""The reproducibility envelope: its digest moves with the data, goal, seeds and topology."""

from __future__ import annotations

import dataclasses
import json

from services.trainer.domain.envelope import Envelope, Hardware, envelope_from_json


def _envelope(**changes) -> Envelope:
    hw = Hardware("cpu", "x86", 1, "2.15", "2.60", "5.17", "0.21", "3.11")
    envelope = Envelope(code_version="abc", dependency_lock="sha256:1", goal_name="g", goal_version="sha256:2",
                        goal_json="{}", dataset_name="d", dataset_version="sha256:3", train_digest="sha256:4",
                        eval_digest="sha256:5", train_uri="/t", eval_uri="/e", seeds={"training": 17, "data": 17},
                        world_size=2, use_gpu=False, hardware=hw, labels=["a", "b"])
    return dataclasses.replace(envelope, **changes)


def test_same_inputs_same_digest_and_json_round_trips() -> None:
    e = _envelope()
    assert e.digest == _envelope().digest
    assert envelope_from_json(json.loads(e.to_json())) == e


def test_any_changed_input_changes_the_digest() -> None:
    base = _envelope().digest
    changes: list[dict[str, object]] = [{"train_digest": "sha256:9"}, {"goal_version": "sha256:8"}, {"world_size": 1},
                                        {"seeds": {"training": 18, "data": 17}}, {"dependency_lock": "sha256:7"}]
    for change in changes:
        assert _envelope(**change).digest != base, change
    assert dataclasses.replace(_envelope(), code_version="def").digest != base
