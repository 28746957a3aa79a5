"""`tuneline up|down|status`: the broker and the five services as background processes.

Each service runs as `tuneline <service> run` with its log at state_dir/logs/<service>.log and
its pid at state_dir/run/<service>.pid; a service is healthy while its ready file is fresh.
`up` is idempotent: it starts what is not running (a service killed with SIGKILL comes back).
With a secure broker's credentials (`tuneline up --secure`), each service connects as its own Kafka identity.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from services.kernel import broker, liveness
from services.kernel.broker_security import SecureKafka
from services.kernel.bus.topics import ensure_topics
from services.kernel.errors import TransientError
from services.kernel.runtime import is_ready
from services.kernel.settings import Settings
from services.stack.secure import grpc_env

SERVICES = ("ingest", "trainer", "evaluator", "deployer", "monitor")


@dataclass(frozen=True)
class ServiceState:
    """One service process as `status` sees it."""

    name: str
    pid: int | None
    healthy: bool
    log: Path


def _pid_file(settings: Settings, name: str) -> Path:
    return settings.path("run", f"{name}.pid")


def _log_file(settings: Settings, name: str) -> Path:
    return settings.path("logs", f"{name}.log")


def _recorded_pid(settings: Settings, name: str) -> int | None:
    try:
        return int(_pid_file(settings, name).read_text())
    except (OSError, ValueError):
        return None


def service_pid(settings: Settings, name: str) -> int | None:
    """The pid of a service we started, if it is alive."""
    pid = _recorded_pid(settings, name)
    return pid if pid is not None and liveness.alive(pid) else None


def _sweep(pgid: int | None) -> None:
    """SIGKILL what is left of a dead service's process group (its children outlive a kill -9)."""
    if pgid is not None and liveness.group_members(pgid):
        os.killpg(pgid, signal.SIGKILL)


def states(settings: Settings) -> list[ServiceState]:
    """Each service's pid, health and log."""
    return [ServiceState(n, service_pid(settings, n), is_ready(settings, n), _log_file(settings, n)) for n in SERVICES]


def _spawn(settings: Settings, name: str, env: dict[str, str]) -> int:
    log = open(_log_file(settings, name), "ab")
    cmd = [sys.executable, "-m", "services.cli", name, "run"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    _pid_file(settings, name).write_text(str(proc.pid))
    return proc.pid


def child_env(settings: Settings) -> dict[str, str]:
    """The environment services inherit: these settings, offline model loading, the state folder."""
    env = dict(os.environ)  # noqa: TID251 -- a child process inherits this process's whole environment
    env.update({"TUNELINE_STATE_DIR": str(settings.state_dir), "TUNELINE_NAMESPACE": settings.namespace,
                "TUNELINE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"})
    if not settings.kafka_bootstrap:
        env.pop("TUNELINE_KAFKA_BOOTSTRAP")
    env.update(grpc_env(settings))
    if settings.at_rest_key_file:
        env["TUNELINE_AT_REST_KEY_FILE"] = str(settings.at_rest_key_file)
    if settings.store_url:
        env["TUNELINE_STORE_URL"] = settings.store_url
    return env


# A parent's own Kafka credentials (an operator's sourced env file) never reach a service.
_KAFKA_SECURITY_ENV = ("TUNELINE_KAFKA_SECURITY_", "TUNELINE_KAFKA_SASL_", "TUNELINE_KAFKA_SSL_")


def kafka_identity_env(env: dict[str, str], kafka: SecureKafka, identity: str) -> dict[str, str]:
    """`env` with the TUNELINE_KAFKA_* credentials of `identity` on the secure broker instead of any inherited ones."""
    return {**{k: v for k, v in env.items() if not k.startswith(_KAFKA_SECURITY_ENV)}, **kafka.env(identity)}


def _secure_kafka(settings: Settings, kafka: SecureKafka) -> None:
    """The secure broker (if embedded) running; the topics of this namespace and every identity's ACLs there."""
    if settings.embedded_kafka:
        broker.start(settings, secure=True)
    kafka.provision(settings)


def up(settings: Settings, services: tuple[str, ...] = SERVICES, timeout_s: float = 180.0,
       kafka: SecureKafka | None = None) -> list[ServiceState]:
    """Start the broker (if embedded) and every service not running; wait until all are healthy.

    `kafka`: a secure broker's credentials; each service then runs as its own Kafka identity.
    """
    if kafka:
        _secure_kafka(settings, kafka)
    else:
        if settings.embedded_kafka:
            broker.start(settings)
        ensure_topics(settings)
    env = child_env(settings)
    for name in services:
        if service_pid(settings, name) is None:
            _sweep(_recorded_pid(settings, name))
            settings.path("run", f"{name}.ready").unlink(missing_ok=True)
            _spawn(settings, name, kafka_identity_env(env, kafka, name) if kafka else env)
    wait_healthy(settings, services, timeout_s)
    return states(settings)


def wait_healthy(settings: Settings, services: tuple[str, ...], timeout_s: float) -> None:
    """Poll until each service's ready file is fresh; name the ones that died or hang."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pending = [n for n in services if not is_ready(settings, n)]
        dead = [n for n in pending if service_pid(settings, n) is None]
        if dead:
            tails = "".join(f"\n--- the end of {_log_file(settings, n)}:\n{_tail(_log_file(settings, n))}" for n in dead)
            raise TransientError(f"{', '.join(dead)} exited during start-up{tails}",
                                 hint=f"see the logs under {settings.state_dir / 'logs'}")
        if not pending:
            return
        time.sleep(0.5)
    raise TransientError(f"not healthy after {timeout_s:.0f}s: {', '.join(pending)}",
                         hint=f"see the logs under {settings.state_dir / 'logs'}")


def _tail(log: Path, lines: int = 15) -> str:
    """The last lines of a service's log: the reason it died is nearly always there."""
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def down(settings: Settings, stop_broker: bool = True, timeout_s: float = 60.0) -> list[str]:
    """SIGTERM every service we started, wait, SIGKILL stragglers, then stop the broker."""
    stopped = []
    for name in SERVICES:
        pid = service_pid(settings, name)
        if pid is not None:
            os.killpg(pid, signal.SIGTERM)
            stopped.append(name)
    groups = [p for p in (_recorded_pid(settings, n) for n in SERVICES) if p]
    deadline = time.monotonic() + timeout_s
    # Wait for every process of each service's group (Ray workers, resource trackers), not just
    # the service itself: `down` promises that nothing is left behind.
    while time.monotonic() < deadline and any(liveness.group_members(g) for g in groups):
        time.sleep(0.2)
    for pgid in groups:
        if liveness.group_members(pgid):
            os.killpg(pgid, signal.SIGKILL)
    for name in SERVICES:
        _pid_file(settings, name).unlink(missing_ok=True)
        settings.path("run", f"{name}.ready").unlink(missing_ok=True)
    if stop_broker and settings.embedded_kafka:
        broker.stop(settings)
    return stopped
