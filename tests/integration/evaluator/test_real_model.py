"""The gate on the real bundled model and real adapters (no Kafka): pass, fail by threshold, champion, tamper."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tuneline.events.v1 import events_pb2 as ev

pytestmark = pytest.mark.integration


def _criteria(out: ev.EvalOutcome) -> dict[str, ev.Criterion]:
    return {c.name: c for c in out.criteria}


def test_good_adapter_passes_and_an_impossible_threshold_fails_naming_it(flow, adapters, goal_for):
    goal = goal_for()
    flow.apply(goal)
    ref = flow.put_adapter(adapters.good)
    out = flow.evaluate(flow.run_finished(ref, adapters.eval, goal))
    assert out.passed, out.summary
    assert out.metrics["accuracy"] >= 0.9 and out.reference.rows == len(adapters.eval.texts)
    assert _criteria(out)["vs_champion"].reason == "no champion serving"

    strict = goal_for(accuracy={"min": 1.01})
    flow.apply(strict)
    failed = flow.evaluate(flow.run_finished(ref, adapters.eval, strict))
    assert not failed.passed
    assert [c.name for c in failed.criteria if not c.passed] == ["accuracy"]
    assert "accuracy" in failed.summary and failed.metrics["accuracy"] == out.metrics["accuracy"]


def test_a_worse_adapter_fails_vs_the_good_champion_with_the_statistic(flow, adapters, goal_for):
    # Loose bounds elsewhere: only the champion test should decide (worse is confidently wrong: high ECE).
    goal = goal_for(accuracy={"min": 0.5}, macro_f1={"min": 0.5}, ece={"max": 1.0})
    flow.apply(goal)
    flow.promote(flow.put_adapter(adapters.good))
    out = flow.evaluate(flow.run_finished(flow.put_adapter(adapters.worse), adapters.eval, goal))
    vs = _criteria(out)["vs_champion"]
    assert not out.passed and not vs.passed and "significantly worse" in vs.reason
    assert [c.name for c in out.criteria if not c.passed] == ["vs_champion"]
    assert out.champion.test == "mcnemar_midp" and out.champion.p_value < 0.05 and out.champion.delta < 0
    report = json.loads(flow.blobs.get_bytes(out.report_json))
    champ = report["findings"]["champion"]
    assert champ["statistic"] == pytest.approx(out.champion.statistic) and champ["champion_only"] > champ["candidate_only"]


def test_a_tampered_adapter_is_refused_and_reported(flow, adapters, goal_for):
    goal = goal_for()
    flow.apply(goal)
    ref = flow.put_adapter(adapters.good)
    stored = Path(ref.uri) / "head.safetensors"
    data = bytearray(stored.read_bytes())
    data[-1] ^= 0x01  # flip one bit of one weight
    stored.write_bytes(bytes(data))
    out = flow.evaluate(flow.run_finished(ref, adapters.eval, goal))
    assert not out.passed and out.summary.startswith("refused: IntegrityError")
    assert not out.HasField("reference") and out.metrics == {}
    report = json.loads(flow.blobs.get_bytes(out.report_json))
    assert report["decision"]["summary"] == out.summary


def test_an_adapter_without_the_trainers_signature_fails_the_gate_unloaded(flow, adapters, goal_for):
    goal = goal_for()
    flow.apply(goal)
    ref = flow.put_adapter(adapters.good)
    run = flow.run_finished(ref, adapters.eval, goal)
    run.ClearField("adapter_signature")  # the good adapter, as someone other than the trainer would publish it
    out = flow.evaluate(run)
    assert not out.passed and out.summary.startswith("refused: Unauthenticated")
    assert "carries no artifact signature" in out.summary and not out.HasField("reference") and out.metrics == {}


def test_the_html_report_is_self_contained_with_decodable_plots(flow, adapters, goal_for):
    from PIL import Image

    goal = goal_for(slice_gap={"max": 0.5})
    goal = goal.replace(task=goal.task.replace(slice_field="channel"))
    flow.apply(goal)
    channels = ["app" if i % 3 else "web" for i in range(len(adapters.eval.texts))]
    out = flow.evaluate(flow.run_finished(flow.put_adapter(adapters.good), adapters.eval, goal, channels))
    html = flow.blobs.get_bytes(out.report_html).decode()
    images = re.findall(r'alt="([^"]+)" src="data:image/png;base64,([^"]+)"', html)
    assert {t for t, _ in images} == {"Confusion matrix", "Reliability diagram", "Per-slice accuracy",
                                      "Robustness by perturbation"}
    for _, b64 in images:
        assert Image.open(io.BytesIO(base64.b64decode(b64))).size[0] > 200
    assert "no champion serving" in html and "<script" not in html
