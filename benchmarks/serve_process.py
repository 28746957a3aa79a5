"""Tuneline's inference server alone in its own process, serving one adapter as goal `one`.

S5 compares servers, not processes: Ray Serve's replica runs in a process of its own, so Tuneline's
server does too, instead of sharing the interpreter (and its lock) with the load generator's threads.

    python -m benchmarks.serve_process ADAPTER_FOLDER [--max-batch 16] [--max-wait-ms 2] [--metrics]

prints `port N` once it serves (with --metrics: `port N metrics HOST:PORT`, its meter provider
installed and /metrics served as a service process does), and stops when its standard input closes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import grpc
import torch

from benchmarks.serve import BASE, TOKEN, route, slot
from services.deployer.domain.routing import RoutingTable
from services.deployer.entrypoints.grpc_server import InferenceClient, build_server
from services.deployer.serving.config import ServingConfig
from services.deployer.serving.inference_log import NullLog
from services.deployer.serving.outcome import NoObserver
from services.deployer.serving.pool import AdapterPool
from services.kernel import modeling
from services.kernel.settings import REPO_ROOT, Settings


def serve(folder: Path, config: ServingConfig, with_metrics: bool = False) -> None:
    """Load the adapter, serve it on a free loopback port, print the port, wait for stdin to close."""
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as work:
        scraped = ""
        if with_metrics:
            from services.kernel.metrics import setup_metrics

            scraped = " metrics " + setup_metrics("deployer", Settings(state_dir=Path(work) / "state")).address
        pool = AdapterPool(BASE, device="auto", work_dir=Path(work) / "pool")
        digest = modeling.adapter_digest(folder)
        pool.load(digest, folder)
        routing = RoutingTable()
        routing.set(route("one", slot(digest, folder)))
        settings = Settings(grpc_tokens=[TOKEN], deployer_address="127.0.0.1:0", state_dir=Path(work) / "state")
        server = build_server(settings, routing, pool, NoObserver(), NullLog(), config=config)
        server.start()
        print(f"port {server.port}{scraped}", flush=True)
        sys.stdin.read()
        server.stop(5)


def start(folder: Path, config: ServingConfig,
          with_metrics: bool = False) -> tuple[subprocess.Popen[str], InferenceClient, str]:
    """This module as a child process; its client once it serves, and its /metrics address ("" without --metrics)."""
    cmd = [sys.executable, "-m", "benchmarks.serve_process", str(folder),
           "--max-batch", str(config.max_batch_size), "--max-wait-ms", str(config.max_wait_ms)]
    cmd += ["--metrics"] if with_metrics else []
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("port "):
        proc.kill()
        raise RuntimeError(f"the server process did not start (exit {proc.wait()}); run `{' '.join(cmd)}` to see why")
    words = line.split()
    return proc, InferenceClient(grpc.insecure_channel(f"127.0.0.1:{int(words[1])}")), words[3] if len(words) > 3 else ""


def stop(proc: subprocess.Popen[str]) -> None:
    """Close the child's stdin (it stops its server and exits); kill it if it does not."""
    if proc.stdin:
        proc.stdin.close()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--max-wait-ms", type=float, default=2.0)
    parser.add_argument("--metrics", action="store_true", help="install the meter provider and serve /metrics")
    args = parser.parse_args(argv)
    serve(args.folder, ServingConfig(max_batch_size=args.max_batch, max_wait_ms=args.max_wait_ms), args.metrics)


if __name__ == "__main__":
    main()
