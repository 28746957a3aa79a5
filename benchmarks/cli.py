"""`tuneline bench NAME`: every benchmark's command and options, registered here and nowhere else.

services/cli.py adds `app` as the `bench` group, importing this module only when `tuneline bench`
runs. Each command imports its benchmark inside its body: the harnesses pull in torch, Ray, Kafka
clients and pandas, which `tuneline bench --help` has no use for.
"""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True)


@app.command("bus")
def bus(
    events: int = typer.Option(20000, help="Events for the throughput arm."),
    latency_events: int = typer.Option(2000, help="Events for the latency arm."),
    rate: float = typer.Option(1000.0, help="Send rate of the latency arm (events/s)."),
    reps: int = typer.Option(3, help="Repetitions of the throughput arm."),
    out: Path | None = typer.Option(None, help="Result JSON path."),
) -> None:
    """Producer events/s and produce->consume p50/p99 on the local broker."""
    from benchmarks import bus as bench

    bench.run(events=events, latency_events=latency_events, rate=rate, reps=reps, out=out)


@app.command("ingest")
def ingest(
    out: Path = typer.Option(None, "--out", help="Result JSON path."),
    rows: int = typer.Option(1_000_000, "--rows", help="Rows of the synthetic arm."),
    reps: int = typer.Option(5, "--reps", help="Repetitions of the banking77 arm."),
) -> None:
    """Rows/s of the gates on banking77 and on synthetic data, and peak memory."""
    from benchmarks import ingest as bench

    bench.run(out=out, rows=rows, reps=reps)


@app.command("train")
def train(profile: str = typer.Option("quick", help="quick (CI) or full"),
          out: str = typer.Option("", help="where to write the JSON result")) -> None:
    """T1-T4: Ray Train vs DDP, FLOP/s vs matmul peak, padding, LoRA vs full, vs HF Trainer."""
    from benchmarks import train as bench

    bench.run_bench(profile, out)


@app.command("eval")
def evaluation(
    out: Path = typer.Option(None, "--out", help="Result JSON path."),
    reps: int = typer.Option(3, "--reps", help="Interleaved repetitions of each arm after the warm-up."),
    threads: int = typer.Option(2, "--threads", help="torch threads for both arms."),
    rows: int = typer.Option(0, "--rows", help="Use only the first N rows of the split (0: all)."),
    adapter: Path = typer.Option(None, "--adapter", help="An adapter folder (default: an untrained one)."),
) -> None:
    """Evaluation rows/s on banking77's eval split, and its cost relative to one scoring pass."""
    from benchmarks import eval as bench

    bench.run(out=out, reps=reps, threads=threads, rows=rows, adapter=adapter)


@app.command("serve")
def serve(profile: str = typer.Option("smoke", help="smoke (CI) or full (BENCHMARKS.md's repetitions)."),
          out: Path | None = typer.Option(None, help="Result JSON path.")) -> None:
    """S1, S3, S4, S4b, S6 from BENCHMARKS.md: the inference server against its baselines."""
    from benchmarks import serve as bench

    bench.run(profile, out)


@app.command("serve-ray")
def serve_ray(profile: str = typer.Option("smoke", help="smoke or full (BENCHMARKS.md's repetitions)."),
              out: Path | None = typer.Option(None, help="Result JSON path.")) -> None:
    """S5 from BENCHMARKS.md: the inference server against Ray Serve, same model, adapter and load."""
    from benchmarks import serve_ray as bench

    bench.run(profile, out)


@app.command("monitor")
def monitor(out: str = typer.Option("", help="write the JSON result here")) -> None:
    """K1 ingest rate, K3 receipt latency, M1 drift time / window span, M3 detection."""
    from benchmarks import monitor as bench

    bench.run_bench(out)


@app.command("store")
def store(transactions: int = typer.Option(2000, help="Transactions per arm."),
          reps: int = typer.Option(2, help="Alternating repetitions of each arm."),
          out: str = typer.Option("", help="write the JSON result here")) -> None:
    """SQLite commits/s with synchronous=FULL (the default: durable on power loss) against NORMAL."""
    from benchmarks import store as bench

    bench.run_bench(out, transactions, reps)


@app.command("pii")
def pii(
    out: Path | None = typer.Option(None, help="Result JSON path."),
    n: int = typer.Option(1000, help="Seeded values of every PII kind."),
    reps: int = typer.Option(5, help="Passes of each throughput arm (the best is reported)."),
    baseline: Path | None = typer.Option(None, help="Another pii.py (e.g. the previous version) to time on the same texts."),
) -> None:
    """Recall per PII kind on a seeded set, precision on banking77's clean texts, scrub rows/s."""
    from benchmarks import pii as bench

    bench.run(out=out, n=n, reps=reps, baseline=baseline)


@app.command("privacy")
def privacy(
    profile: str = typer.Option("quick", help="quick (a 3,000-row slice, 2 epochs) or full (8,000 rows, 3 epochs)."),
    out: Path | None = typer.Option(None, help="Result JSON path (default benchmarks/results/privacy.json)."),
) -> None:
    """DP-SGD with LoRA at epsilon = inf, 8, 3, 1: accuracy, training time, membership-inference AUC."""
    from benchmarks import privacy as bench

    bench.run(profile, out)
