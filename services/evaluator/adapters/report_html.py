"""The report as one self-contained HTML page: tables and inline PNG plots, no external assets."""

from __future__ import annotations

import math
from collections.abc import Iterable
from html import escape

from services.evaluator.adapters import plots
from services.evaluator.domain.report import EvalReport, Findings

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f3f3f3}.pass{color:#1a7f37;font-weight:bold}.fail{color:#cf222e;font-weight:bold}
.banner{padding:1em;border-radius:6px;font-size:1.2em}.banner.pass{background:#dafbe1}.banner.fail{background:#ffebe9}
img{max-width:100%;border:1px solid #eee;margin:0.5em 0}code{font-size:0.9em}
"""


def _num(v: float | int | None) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _table(header: Iterable[str], rows: Iterable[Iterable[object]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _ok(passed: bool) -> str:
    return '<span class="pass">pass</span>' if passed else '<span class="fail">FAIL</span>'


def _criteria(report: EvalReport) -> str:
    rows = [(escape(c.name), _num(c.value), f"{c.comparator} {_num(c.threshold)}", _ok(c.passed), escape(c.reason))
            for c in report.decision.criteria]
    return _table(("criterion", "value", "threshold", "decision", "reason"), rows)


def _identity(report: EvalReport) -> str:
    rows = [(escape(k), f"<code>{escape(str(v))}</code>") for k, v in vars(report.identity).items()]
    return _table(("field", "value"), rows)


def _img(title: str, uri: str) -> str:
    return f"<h3>{escape(title)}</h3><img alt=\"{escape(title)}\" src=\"{uri}\">"


def _plots(f: Findings) -> str:
    parts = []
    if f.metrics:
        parts.append(_img("Confusion matrix", plots.confusion_plot(f.metrics)))
    if f.calibration:
        parts.append(_img("Reliability diagram", plots.reliability_plot(f.calibration)))
    if f.slices and f.slices.slices and f.metrics:
        parts.append(_img("Per-slice accuracy", plots.slice_plot(f.slices, f.metrics.accuracy)))
    elif f.slices:
        parts.append(f"<h3>Per-slice accuracy</h3><p>{escape(f.slices.reason or 'no slices')}</p>")
    if f.robustness:
        parts.append(_img("Robustness by perturbation", plots.robustness_plot(f.robustness)))
    if f.champion:
        parts.append(_img("Candidate vs champion", plots.champion_plot(f.champion)))
    else:
        parts.append(f"<h3>Candidate vs champion</h3><p>{escape(f.champion_reason or 'not compared')}</p>")
    return "".join(parts)


def _details(f: Findings) -> str:
    out = []
    if f.latency:
        lat = f.latency
        out.append("<h2>Latency</h2>" + _table(("p50 ms (batch 1)", "p95 ms (batch 1)", "requests", "batched rows/s", "batch"),
                   [(_num(lat.p50_ms), _num(lat.p95_ms), lat.requests, _num(lat.throughput_rows_s), lat.batch_size)]))
    if f.policy:
        p = f.policy
        out.append("<h2>Policy outcomes</h2>" + _table(
            ("escalate below", "escalation rate", "answered accuracy", "answered rows", "blocked labels", "blocked predictions"),
            [(_num(p.threshold), _num(p.escalation_rate), _num(p.answered_accuracy), p.answered_rows,
              escape(", ".join(p.blocked_labels) or "none"), p.blocked_predictions)]))
    if f.problems:
        out.append("<h2>Problems</h2><ul>" + "".join(f"<li>{escape(p)}</li>" for p in f.problems) + "</ul>")
    if f.metrics:
        labs = sorted(f.metrics.per_label, key=lambda s: (s.f1, s.label))
        out.append("<h2>Per-label scores (worst F1 first)</h2>" + _table(
            ("label", "precision", "recall", "F1", "support", "predicted"),
            [(escape(s.label), _num(s.precision), _num(s.recall), _num(s.f1), s.support, s.predicted) for s in labs]))
    return "".join(out)


def render(report: EvalReport) -> bytes:
    """The whole page as UTF-8 bytes."""
    d, ident = report.decision, report.identity
    verdict = "pass" if d.passed else "fail"
    body = (
        f"<h1>Evaluation {escape(ident.eval_id)}</h1>"
        f"<div class=\"banner {verdict}\">{escape(d.summary)}</div>"
        f"<h2>Acceptance criteria</h2>{_criteria(report)}"
        f"<h2>Plots</h2>{_plots(report.findings)}{_details(report.findings)}"
        f"<h2>Identity and digests</h2>{_identity(report)}"
    )
    title = f"Tuneline eval {ident.goal_name} {verdict}"
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>{body}</body></html>").encode()
