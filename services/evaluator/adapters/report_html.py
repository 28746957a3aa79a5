"""The report as one self-contained HTML page: tables and inline PNG plots, no external assets.

The page is a jinja2 template with autoescape on: every label, slice, goal and reason string from
a goal, a dataset or an error message is escaped wherever it lands, headers and cells alike. The
template lives here rather than in a .html.j2 file so that it ships with the module (the package
data is protos only).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import jinja2

from services.evaluator.adapters import plots
from services.evaluator.domain.report import EvalReport, Findings

_TEMPLATE = """\
{%- macro ok(passed) -%}
{% if passed %}<span class="pass">pass</span>{% else %}<span class="fail">FAIL</span>{% endif %}
{%- endmacro -%}
<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Tuneline eval {{ ident.goal_name }} {{ verdict }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f3f3f3}.pass{color:#1a7f37;font-weight:bold}.fail{color:#cf222e;font-weight:bold}
.banner{padding:1em;border-radius:6px;font-size:1.2em}.banner.pass{background:#dafbe1}.banner.fail{background:#ffebe9}
img{max-width:100%;border:1px solid #eee;margin:0.5em 0}code{font-size:0.9em}
</style></head><body>
<h1>Evaluation {{ ident.eval_id }}</h1>
<div class="banner {{ verdict }}">{{ decision.summary }}</div>

<h2>Acceptance criteria</h2>
<table><tr><th>criterion</th><th>value</th><th>threshold</th><th>decision</th><th>reason</th></tr>
{% for c in decision.criteria %}
<tr><td>{{ c.name }}</td><td>{{ c.value | num }}</td><td>{{ c.comparator }} {{ c.threshold | num }}</td>
<td>{{ ok(c.passed) }}</td><td>{{ c.reason }}</td></tr>
{% endfor %}
</table>

<h2>Plots</h2>
{% for p in plots %}
<h3>{{ p.title }}</h3>{% if p.image %}<img alt="{{ p.title }}" src="{{ p.image }}">{% else %}<p>{{ p.note }}</p>{% endif %}

{% endfor %}
{% if f.latency %}{% set lat = f.latency %}
<h2>Latency</h2>
<table><tr><th>p50 ms (batch 1)</th><th>p95 ms (batch 1)</th><th>requests</th><th>batched rows/s</th><th>batch</th></tr>
<tr><td>{{ lat.p50_ms | num }}</td><td>{{ lat.p95_ms | num }}</td><td>{{ lat.requests }}</td>
<td>{{ lat.throughput_rows_s | num }}</td><td>{{ lat.batch_size }}</td></tr></table>
{% endif %}
<h2>Privacy</h2>
{% if f.privacy %}<p>{{ f.privacy.statement }}</p>
{% else %}<p>Not trained with differential privacy: no (ε, δ) guarantee.</p>
{% endif %}
{% if f.policy %}{% set p = f.policy %}
<h2>Policy outcomes</h2>
<table><tr><th>escalate below</th><th>escalation rate</th><th>answered accuracy</th><th>answered rows</th>
<th>blocked labels</th><th>blocked predictions</th></tr>
<tr><td>{{ p.threshold | num }}</td><td>{{ p.escalation_rate | num }}</td><td>{{ p.answered_accuracy | num }}</td>
<td>{{ p.answered_rows }}</td><td>{{ p.blocked_labels | join(", ") or "none" }}</td><td>{{ p.blocked_predictions }}</td></tr>
</table>
{% endif %}
{% if f.problems %}
<h2>Problems</h2>
<ul>{% for problem in f.problems %}<li>{{ problem }}</li>{% endfor %}</ul>
{% endif %}
{% if f.metrics %}
<h2>Per-label scores (worst F1 first)</h2>
<table><tr><th>label</th><th>precision</th><th>recall</th><th>F1</th><th>support</th><th>predicted</th></tr>
{% for s in worst_first %}
<tr><td>{{ s.label }}</td><td>{{ s.precision | num }}</td><td>{{ s.recall | num }}</td><td>{{ s.f1 | num }}</td>
<td>{{ s.support }}</td><td>{{ s.predicted }}</td></tr>
{% endfor %}
</table>
{% endif %}

<h2>Identity and digests</h2>
<table><tr><th>field</th><th>value</th></tr>
{% for key, value in identity %}<tr><td>{{ key }}</td><td><code>{{ value }}</code></td></tr>
{% endfor %}
</table>
</body></html>
"""


@dataclass(frozen=True)
class _Plot:
    """One plot section: an inline PNG, or a note saying why there is none."""

    title: str
    image: str = ""
    note: str = ""


def _num(v: float | None) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


@functools.cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _num
    return env.from_string(_TEMPLATE)


def _plots(f: Findings) -> list[_Plot]:
    out = []
    if f.metrics:
        out.append(_Plot("Confusion matrix", plots.confusion_plot(f.metrics)))
    if f.calibration:
        out.append(_Plot("Reliability diagram", plots.reliability_plot(f.calibration)))
    if f.slices and f.slices.slices and f.metrics:
        out.append(_Plot("Per-slice accuracy", plots.slice_plot(f.slices, f.metrics.accuracy)))
    elif f.slices:
        out.append(_Plot("Per-slice accuracy", note=f.slices.reason or "no slices"))
    if f.robustness:
        out.append(_Plot("Robustness by perturbation", plots.robustness_plot(f.robustness)))
    if f.champion:
        out.append(_Plot("Candidate vs champion", plots.champion_plot(f.champion)))
    else:
        out.append(_Plot("Candidate vs champion", note=f.champion_reason or "not compared"))
    return out


def render(report: EvalReport) -> bytes:
    """The whole page as UTF-8 bytes."""
    f = report.findings
    worst_first = sorted(f.metrics.per_label, key=lambda s: (s.f1, s.label)) if f.metrics else []
    return _template().render(
        ident=report.identity, decision=report.decision, verdict="pass" if report.decision.passed else "fail",
        f=f, plots=_plots(f), worst_first=worst_first, identity=list(vars(report.identity).items()),
    ).encode()
