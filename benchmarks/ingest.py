"""`tuneline bench ingest`: gate throughput (rows/s) and peak memory on banking77 and synthetic data.

Each measurement runs in a fresh spawned process so its peak RSS (ru_maxrss) is its own. The
banking77 arm repeats `reps` times (median and spread reported); the synthetic arm (default 1M rows
of seeded random word sequences, ~60 bytes each) runs once, and its peak memory is compared with the
file size: a streaming ingest holds chunks and per-row hashes/signatures, never the whole file.
"""

from __future__ import annotations

import csv
import multiprocessing as mp
import random
import resource
import tempfile
import threading
import time
from pathlib import Path

from rich.console import Console

from benchmarks.report import spread, write_result

console = Console()
BANKING77 = Path("datasets/banking77/train.csv")


def synthetic_csv(path: Path, rows: int, labels: int = 50, seed: int = 7) -> Path:
    """Write a seeded CSV of random lowercase word sequences (few near duplicates) with `labels` labels."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = ["".join(rng.choices(letters, k=rng.randint(2, 9))) for _ in range(20_000)]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(rows):
            w.writerow([" ".join(rng.choices(vocab, k=rng.randint(6, 14))), f"label_{i % labels}"])
    return path


class _RssSampler:
    """Peak anonymous and file-backed resident memory (MB), sampled every 20 ms from /proc/self/status.

    ru_maxrss counts pages of memory-mapped files (the signature maps) as well; the split says how
    much was the process's own heap.
    """

    def __init__(self) -> None:
        self.peak = {"RssAnon": 0.0, "RssFile": 0.0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            with open("/proc/self/status") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key in self.peak:
                        self.peak[key] = max(self.peak[key], int(value.split()[0]) / 1024)

    def __enter__(self) -> _RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _measure(path: str, queue: mp.Queue[dict[str, float]]) -> None:
    from services.ingest.certify import certify
    from services.ingest.domain.uri import check_uri
    from services.ingest.plan import Plan, Policy

    with tempfile.TemporaryDirectory() as work:
        loc = check_uri(path, [Path(path).parent], [])
        with _RssSampler() as rss:
            start, cpu = time.perf_counter(), time.process_time()
            result = certify(Plan("bench", loc), Policy(), Path(work))
            seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    rows = next(g.counts["rows"] for g in result.certificate if g.gate == "schema")
    queue.put({"seconds": seconds, "cpu_seconds": cpu_seconds, "rows": rows, "passed": result.passed,
               "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               "peak_anon_mb": rss.peak["RssAnon"], "peak_file_mapped_mb": rss.peak["RssFile"]})


def measure(path: Path) -> dict[str, float]:
    """Certify one file in a fresh process; its time, rows and peak memory."""
    ctx = mp.get_context("spawn")
    queue: mp.Queue[dict[str, float]] = ctx.Queue()
    proc = ctx.Process(target=_measure, args=(str(path.resolve()), queue))
    proc.start()
    out = queue.get(timeout=3600)
    proc.join()
    out["rows_per_s"] = out["rows"] / out["seconds"]
    # The machine is shared: CPU seconds of the ingest process are the steadier measure.
    out["rows_per_cpu_s"] = out["rows"] / out["cpu_seconds"]
    return out


def run(*, out: Path | None, rows: int, reps: int) -> None:
    """Rows/s of the gates on banking77 and on synthetic data, and peak memory."""
    small = [measure(BANKING77) for _ in range(reps)]
    with tempfile.TemporaryDirectory() as tmp:
        big_path = synthetic_csv(Path(tmp) / "synthetic.csv", rows)
        size_mb = big_path.stat().st_size / 2**20
        big = measure(big_path)
    b77_rows_per_s = spread([s["rows_per_s"] for s in small])
    b77_rows_per_cpu_s = spread([s["rows_per_cpu_s"] for s in small])
    b77_peak_rss_mb = max(s["peak_rss_mb"] for s in small)
    result: dict[str, object] = {
        "banking77": {"rows": small[0]["rows"], "rows_per_s": b77_rows_per_s, "rows_per_cpu_s": b77_rows_per_cpu_s,
                      "peak_rss_mb": b77_peak_rss_mb, "passed": all(s["passed"] for s in small)},
        "synthetic": {**big, "file_mb": size_mb, "peak_rss_over_file": big["peak_rss_mb"] / size_mb},
    }
    path = write_result("ingest", result, out)
    console.print(f"banking77: median {b77_rows_per_s['median']:.0f} rows/s wall, {b77_rows_per_cpu_s['median']:.0f} rows/CPU-s, "
                  f"peak {b77_peak_rss_mb:.0f} MB")
    console.print(f"synthetic {rows} rows ({size_mb:.0f} MB): {big['rows_per_s']:.0f} rows/s wall, "
                  f"{big['rows_per_cpu_s']:.0f} rows/CPU-s, peak {big['peak_rss_mb']:.0f} MB "
                  f"(anon {big['peak_anon_mb']:.0f} MB, file-mapped {big['peak_file_mapped_mb']:.0f} MB)")
    console.print(f"wrote {path}")
