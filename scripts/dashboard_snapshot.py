"""Screenshots of what an operator opens: the dashboard's serving panels and the drift incident's report.

    .venv/bin/python scripts/dashboard_snapshot.py --prometheus PATH --chromium PATH [--out docs]

Runs the quick demo while a real Prometheus scrapes every service's /metrics (targets from the services'
ready files, every 2 s), then draws the serving row of deploy/grafana/tuneline.json from Prometheus's
answers to the panels' own queries (verbatim, over the demo's time range), and takes headless-Chromium
screenshots of that page and of the Evidently report the drift incident carries. Grafana itself is not
installable on the reference machine (no package source serves it), so the panels are drawn here with
matplotlib; the numbers are Prometheus's. Nothing is left running: the demo stops its services and
broker, and Prometheus is stopped at the end.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import html
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from services.kernel.settings import Settings  # noqa: E402 - after the path is set
from services.stack.processes import SERVICES  # noqa: E402

SERVING_ROW = "Serving"
STEP_S = 5


def main() -> int:
    args = _args()
    base = Settings()
    work = Path(tempfile.mkdtemp(prefix="tuneline-snapshot-"))
    targets = work / "targets.json"
    targets.write_text("[]")
    port = _free_port()
    (work / "prometheus.yml").write_text(json.dumps({
        "global": {"scrape_interval": "2s", "evaluation_interval": "2s"},
        "scrape_configs": [{"job_name": "tuneline", "file_sd_configs": [{"files": [str(targets)], "refresh_interval": "2s"}]}],
    }))
    prom = subprocess.Popen([args.prometheus, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=(work / "prometheus.log").open("w"))
    stop = threading.Event()
    before = set((base.state_dir / "demo").glob("*")) if (base.state_dir / "demo").exists() else set()
    run_dir: list[Path] = []
    watcher = threading.Thread(target=_watch_targets, args=(base.state_dir / "demo", before, targets, run_dir, stop), daemon=True)
    watcher.start()
    started = time.time()
    try:
        demo = subprocess.run([str(REPO / ".venv" / "bin" / "tuneline"), "demo", "--quick"], cwd=REPO, check=False)
        ended = time.time()
        if demo.returncode != 0 or not run_dir:
            print("the demo failed; no snapshot", file=sys.stderr)
            return 1
        out = Path(args.out)
        page = work / "serving.html"
        page.write_text(_serving_page(f"http://127.0.0.1:{port}", started, ended))
        _screenshot(args.chromium, page, out / "dashboard-serving.png", 1500, 1180)
        report = work / "drift-report.html"
        report.write_bytes(_drift_report(run_dir[0]))
        _screenshot(args.chromium, report, out / "drift-report.png", 1500, 1640)
        print(f"wrote {out / 'dashboard-serving.png'} and {out / 'drift-report.png'}")
        return 0
    finally:
        stop.set()
        prom.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            prom.wait(30)
        if prom.poll() is None:
            prom.kill()


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prometheus", required=True, help="a Prometheus server binary")
    p.add_argument("--chromium", required=True, help="a Chromium binary (run headless)")
    p.add_argument("--out", default=str(REPO / "docs"))
    return p.parse_args()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _watch_targets(demos: Path, before: set[Path], targets: Path, run_dir: list[Path], stop: threading.Event) -> None:
    """Point Prometheus at every service of the demo run that started after this script (file_sd)."""
    while not stop.wait(1.0):
        if not run_dir:
            fresh = sorted(set(demos.glob("*")) - before) if demos.exists() else []
            if not fresh:
                continue
            run_dir.append(fresh[-1])
        found = []
        for service in SERVICES:
            with contextlib.suppress(OSError, ValueError):
                address = json.loads((run_dir[0] / "run" / f"{service}.ready").read_text()).get("metrics", "")
                if address:
                    found.append({"targets": [address], "labels": {"service": service}})
        tmp = targets.with_suffix(".tmp")
        tmp.write_text(json.dumps(found))
        os.replace(tmp, targets)


def _query_range(url: str, expr: str, start: float, end: float) -> list[dict[str, Any]]:
    q = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": STEP_S})
    with urllib.request.urlopen(f"{url}/api/v1/query_range?{q}", timeout=30) as reply:
        body = json.load(reply)
    if body.get("status") != "success":
        raise RuntimeError(f"Prometheus refused {expr!r}: {body}")
    return list(body["data"]["result"])


def _legend(fmt: str, labels: dict[str, str]) -> str:
    out = fmt
    for k, v in labels.items():
        out = out.replace("{{" + k + "}}", v)
    return out or ", ".join(f"{k}={v}" for k, v in labels.items()) or "value"


def _serving_page(url: str, start: float, end: float) -> str:
    """The dashboard's serving row: each panel's queries, evaluated by Prometheus, drawn as Grafana lays them out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    board = json.loads((REPO / "deploy" / "grafana" / "tuneline.json").read_text())
    panels, in_row = [], False
    for p in board["panels"]:
        if p.get("type") == "row":
            in_row = p.get("title") == SERVING_ROW
            continue
        if in_row:
            panels.append(p)
    cells = []
    for p in panels:
        fig, ax = plt.subplots(figsize=(7.0, 3.0), dpi=100)
        fig.patch.set_facecolor("#181b1f")
        ax.set_facecolor("#181b1f")
        for target in p.get("targets", []):
            for series in _query_range(url, target["expr"], start, end):
                points = [(float(t) - start, float(v)) for t, v in series["values"] if v not in ("NaN", "+Inf", "-Inf")]
                if points:
                    ax.plot(*zip(*points, strict=True), label=_legend(target.get("legendFormat", ""), series["metric"]))
        ax.tick_params(colors="#ccccdc", labelsize=8)
        for spine in ax.spines.values():
            spine.set_color("#333")
        ax.grid(color="#2a2d33")
        ax.set_xlabel("seconds into the demo", color="#ccccdc", fontsize=8)
        unit = p.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
        ax.set_ylabel(unit, color="#ccccdc", fontsize=8)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, facecolor="#22252b", labelcolor="#ccccdc", edgecolor="#333")
        else:  # as Grafana shows a query that returned no series (e.g. no request failed)
            ax.text(0.5, 0.5, "No data", transform=ax.transAxes, ha="center", va="center", color="#ccccdc", fontsize=12)
        buf = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buf, format="png", facecolor=fig.get_facecolor())
        plt.close(fig)
        queries = "<br>".join(html.escape(t["expr"]) for t in p.get("targets", []))
        cells.append(f'<div class="panel"><h3>{html.escape(p["title"])}</h3>'
                     f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}"><code>{queries}</code></div>')
    version = _prometheus_version(url)
    return ("<!doctype html><html><head><meta charset='utf-8'><style>body{background:#111217;color:#ccccdc;font:13px sans-serif;"
            "margin:16px} .grid{display:grid;grid-template-columns:1fr 1fr;gap:12px} .panel{background:#181b1f;border:1px solid #2a2d33;"
            "padding:8px} h3{margin:0 0 6px;font-size:14px} img{width:100%} code{font-size:10px;color:#8e8e9a}</style></head><body>"
            f"<h2>Tuneline — {html.escape(SERVING_ROW)} (deploy/grafana/tuneline.json)</h2>"
            f"<p>The quick demo's services scraped every 2 s by Prometheus {html.escape(version)}; each panel's queries verbatim, "
            f"evaluated by Prometheus over the demo ({end - start:.0f} s, step {STEP_S} s).</p>"
            f"<div class='grid'>{''.join(cells)}</div></body></html>")


def _prometheus_version(url: str) -> str:
    with contextlib.suppress(OSError, ValueError, KeyError):
        with urllib.request.urlopen(f"{url}/api/v1/status/buildinfo", timeout=10) as reply:
            return str(json.load(reply)["data"]["version"]) or "(built from source)"
    return "(built from source)"


def _drift_report(run_dir: Path) -> bytes:
    """The Evidently report the demo's drift incident carries (DriftDetected.report_html), from the run's stores."""
    from tuneline.events.v1 import events_pb2 as ev

    from services.kernel.blobs import BlobStore
    from services.monitor.store import WindowVerdictRow

    settings = Settings().replace(state_dir=run_dir)
    engine = sa.create_engine(f"sqlite:///{run_dir / 'stores' / 'monitor.db'}")
    with engine.connect() as conn:
        row = conn.execute(sa.select(WindowVerdictRow.report_digest, WindowVerdictRow.report_uri)
                           .where(WindowVerdictRow.drifted.is_(True), WindowVerdictRow.report_digest != "")
                           .order_by(WindowVerdictRow.index.desc())).first()
    engine.dispose()
    if row is None:
        raise RuntimeError(f"no drifted window with a report in {run_dir}")
    return BlobStore.from_settings(settings).get_bytes(ev.ArtifactRef(digest=row.report_digest, uri=row.report_uri))


def _screenshot(chromium: str, page: Path, png: Path, width: int, height: int) -> None:
    png.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--window-size={width},{height}",
                    "--virtual-time-budget=15000", f"--screenshot={png}", page.as_uri()], check=True, timeout=180,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    raise SystemExit(main())
