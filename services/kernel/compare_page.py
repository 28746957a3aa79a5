"""The comparison of two runs as one self-contained HTML page (`tuneline runs compare A B --html FILE`).

A jinja2 template with autoescape on: labels, texts and envelope values come from datasets and goals
and are never trusted as markup.
"""

from __future__ import annotations

import functools
import math

import jinja2
from tuneline.monitor.v1 import registry_pb2 as r

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Runs {{ c.run_a.run_id }} vs {{ c.run_b.run_id }}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:72em}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}.bad{color:#b00020}.good{color:#1b5e20}
code{font-size:12px}</style></head><body>
<h1>Run comparison</h1>
<p>A: <code>{{ c.run_a.run_id }}</code> (goal {{ c.run_a.goal_name }}, dataset <code>{{ c.run_a.dataset_version }}</code>,
eval <code>{{ c.eval_a or "—" }}</code>)<br>
B: <code>{{ c.run_b.run_id }}</code> (goal {{ c.run_b.goal_name }}, dataset <code>{{ c.run_b.dataset_version }}</code>,
eval <code>{{ c.eval_b or "—" }}</code>). Deltas are B − A.</p>
{% for p in c.problems %}<p class="bad">{{ p }}</p>{% endfor %}
<h2>Envelope</h2>
{% if c.envelope %}<table><tr><th>section</th><th>field</th><th>A</th><th>B</th></tr>
{% for e in c.envelope %}<tr><td>{{ e.section }}</td><td><code>{{ e.path }}</code></td><td><code>{{ e.a }}</code></td>
<td><code>{{ e.b }}</code></td></tr>{% endfor %}</table>{% else %}<p>identical</p>{% endif %}
<h2>Gate criteria</h2>
<table><tr><th>criterion</th><th>A</th><th>B</th><th>B − A</th><th>A</th><th>B</th><th>threshold</th></tr>
{% for k in c.criteria %}<tr><td>{{ k.name }}</td><td>{{ k.a | num }}</td><td>{{ k.b | num }}</td><td>{{ k.delta | num }}</td>
<td class="{{ 'good' if k.a_passed else 'bad' }}">{{ "pass" if k.a_passed else "FAIL" }}</td>
<td class="{{ 'good' if k.b_passed else 'bad' }}">{{ "pass" if k.b_passed else "FAIL" }}</td>
<td>{{ k.comparator }} {{ k.threshold | num }}</td></tr>{% endfor %}</table>
<h2>Metrics</h2>
<table><tr><th>metric</th><th>A</th><th>B</th><th>B − A</th></tr>
{% for d in c.metrics %}<tr><td>{{ d.name }}</td><td>{{ d.a | num }}</td><td>{{ d.b | num }}</td><td>{{ d.delta | num }}</td></tr>
{% endfor %}</table>
<h2>Paired test</h2>
{% if c.paired.paired %}<p>McNemar's exact test on {{ c.paired.rows }} rows: accuracy {{ c.paired.accuracy_a | num }} →
{{ c.paired.accuracy_b | num }}; only A right {{ c.paired.only_a_correct }}, only B right {{ c.paired.only_b_correct }},
p = {{ c.paired.p_value | num }}.</p>{% else %}<p>not paired: {{ c.paired.reason }}</p>{% endif %}
{% if c.labels %}<h2>Per-label F1</h2><table><tr><th>label</th><th>A</th><th>B</th><th>B − A</th></tr>
{% for d in c.labels %}<tr><td>{{ d.name }}</td><td>{{ d.a | num }}</td><td>{{ d.b | num }}</td><td>{{ d.delta | num }}</td></tr>
{% endfor %}</table>{% endif %}
{% if c.slices %}<h2>Per-slice accuracy</h2><table><tr><th>slice</th><th>A</th><th>B</th><th>B − A</th></tr>
{% for d in c.slices %}<tr><td>{{ d.name }}</td><td>{{ d.a | num }}</td><td>{{ d.b | num }}</td><td>{{ d.delta | num }}</td></tr>
{% endfor %}</table>{% endif %}
<h2>Changed answers ({{ c.changed_total }})</h2>
{% if c.changed %}<table><tr><th>row</th><th>text</th><th>truth</th><th>A</th><th>B</th></tr>
{% for x in c.changed %}<tr><td>{{ x.row }}</td><td>{{ x.text }}</td><td>{{ x.truth }}</td>
<td class="{{ 'good' if x.a == x.truth else 'bad' }}">{{ x.a }}</td><td class="{{ 'good' if x.b == x.truth else 'bad' }}">{{ x.b }}</td>
</tr>{% endfor %}</table>{% else %}<p>none listed</p>{% endif %}
</body></html>
"""


def _num(v: float) -> str:
    return "—" if not math.isfinite(v) else f"{v:.4g}"


@functools.cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _num
    return env.from_string(_TEMPLATE)


def render_comparison(c: r.CompareRunsResponse) -> str:
    """The comparison as an HTML page."""
    return _template().render(c=c)
