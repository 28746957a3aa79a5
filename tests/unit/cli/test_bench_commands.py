"""`tuneline bench NAME` as a user runs it: every benchmark is there with its options and defaults,
and no other `tuneline` command imports the benchmark harnesses."""

from __future__ import annotations

import json
import subprocess
import sys

from services.kernel.settings import REPO_ROOT

# In a fresh interpreter: compose the CLI, note which benchmarks modules that imported, then run each
# command with fake harnesses that record how they were called.
SCRIPT = """
import json, sys, types
import services.cli
services.cli._compose()
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "benchmarks")
import benchmarks
calls = []
for name in ("bus", "ingest", "train", "eval", "serve", "serve_ray", "monitor", "pii", "privacy"):
    fake = types.ModuleType(f"benchmarks.{name}")
    def record(*args, _name=name, **kwargs):
        calls.append([_name, [str(a) for a in args], {k: str(v) for k, v in kwargs.items()}])
    fake.run = fake.run_bench = record
    sys.modules[fake.__name__] = fake
    setattr(benchmarks, name, fake)
for argv in json.loads(sys.argv[1]):
    services.cli.app(argv, standalone_mode=False)
print(json.dumps({"loaded_by_compose": loaded, "calls": calls}))
"""

RUNS = [
    (["bench", "bus"], ["bus", [], {"events": "20000", "latency_events": "2000", "rate": "1000.0", "reps": "3",
                                    "out": "None"}]),
    (["bench", "bus", "--events", "7", "--latency-events", "5", "--rate", "50", "--reps", "1", "--out", "b.json"],
     ["bus", [], {"events": "7", "latency_events": "5", "rate": "50.0", "reps": "1", "out": "b.json"}]),
    (["bench", "ingest"], ["ingest", [], {"out": "None", "rows": "1000000", "reps": "5"}]),
    (["bench", "ingest", "--out", "i.json", "--rows", "10", "--reps", "2"],
     ["ingest", [], {"out": "i.json", "rows": "10", "reps": "2"}]),
    (["bench", "train"], ["train", ["quick", ""], {}]),
    (["bench", "train", "--profile", "full", "--out", "t.json"], ["train", ["full", "t.json"], {}]),
    (["bench", "eval"], ["eval", [], {"out": "None", "reps": "3", "threads": "2", "rows": "0", "adapter": "None"}]),
    (["bench", "eval", "--out", "e.json", "--reps", "1", "--threads", "4", "--rows", "9", "--adapter", "a"],
     ["eval", [], {"out": "e.json", "reps": "1", "threads": "4", "rows": "9", "adapter": "a"}]),
    (["bench", "serve"], ["serve", ["smoke", "None"], {}]),
    (["bench", "serve", "--profile", "full", "--out", "s.json"], ["serve", ["full", "s.json"], {}]),
    (["bench", "serve-ray"], ["serve_ray", ["smoke", "None"], {}]),
    (["bench", "serve-ray", "--profile", "full", "--out", "r.json"], ["serve_ray", ["full", "r.json"], {}]),
    (["bench", "monitor"], ["monitor", [""], {}]),
    (["bench", "monitor", "--out", "m.json"], ["monitor", ["m.json"], {}]),
    (["bench", "pii"], ["pii", [], {"out": "None", "n": "1000", "reps": "5", "baseline": "None"}]),
    (["bench", "pii", "--out", "p.json", "--n", "9", "--reps", "1", "--baseline", "old.py"],
     ["pii", [], {"out": "p.json", "n": "9", "reps": "1", "baseline": "old.py"}]),
    (["bench", "privacy"], ["privacy", ["quick", "None"], {}]),
    (["bench", "privacy", "--profile", "full", "--out", "d.json"], ["privacy", ["full", "d.json"], {}]),
]


def test_every_bench_command_passes_its_options_and_only_bench_loads_benchmarks() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps([argv for argv, _ in RUNS])], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": f"{REPO_ROOT}:{REPO_ROOT / 'protos'}", "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["loaded_by_compose"] == [], "composing `tuneline` must not import benchmarks/"
    assert result["calls"] == [call for _, call in RUNS]
