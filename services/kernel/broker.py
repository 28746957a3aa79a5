"""The embedded Apache Kafka broker: jars from Maven Central, KRaft single node, a local process.

`start` resolves the pinned jars once (deploy/kafka/pom.xml, cached in ~/.m2 and target/libs),
formats storage on first use, launches the broker with a capped heap, its data and log under the
state folder, and waits until it answers metadata requests. Starting twice leaves one broker.

`start(..., secure=True)` runs the same broker with SASL_SSL, SCRAM and ACLs (services.kernel.broker_security).
The mode is part of the broker's state: storage formatted one way is never started the other way, so
a plaintext broker's data is never opened up by a secure start's absence of ACLs, or the reverse.

`start(..., brokers=3)` runs a three-node KRaft cluster instead (each node broker and controller, a
static quorum of the three; node i under state_dir/kafka/node-<i> on kafka_port + 2(i-1)), with
replication 3 and min.insync.replicas 2 for every topic, so that an acknowledged event survives a
node lost. The size is part of the state too (state_dir/kafka/brokers): every later command and
service on that state folder sees the whole cluster. The secure mode runs on one node only.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from services.kernel import liveness
from services.kernel.broker_security import PROTOCOL, SecureKafka, write_private
from services.kernel.bus.topics import broker_reachable, brokers_registered
from services.kernel.errors import ConfigError, DependencyMissing, TransientError
from services.kernel.settings import REPO_ROOT, Settings

KAFKA_DIR = REPO_ROOT / "deploy" / "kafka"
MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"


@dataclass(frozen=True)
class BrokerStatus:
    """Whether the embedded broker runs, and where."""

    running: bool
    pid: int | None
    bootstrap: str
    data_dir: Path
    log_file: Path
    answering: bool
    secure: bool = False
    brokers: int = 1
    nodes_running: int = 0


def _home(settings: Settings) -> Path:
    return settings.state_dir / "kafka"


def _nodes(settings: Settings) -> range:
    return range(1, settings.embedded_brokers + 1)


def _node_home(settings: Settings, node: int) -> Path:
    """A node's folder: the cluster's own for a single node (the layout before clusters), node-<i> in a cluster."""
    return _home(settings) if settings.embedded_brokers == 1 else _home(settings) / f"node-{node}"


def _pid_file(settings: Settings, node: int = 1) -> Path:
    return _node_home(settings, node) / "broker.pid"


def node_ports(settings: Settings, node: int) -> tuple[int, int]:
    """A node's client and controller ports."""
    return settings.kafka_port + 2 * (node - 1), settings.kafka_controller_port + 2 * (node - 1)


def _mode_file(settings: Settings) -> Path:
    # "SASL_SSL" for storage formatted by a secure start; absent (or "PLAINTEXT"): plaintext.
    return _home(settings) / "security"


def formatted_mode(settings: Settings) -> str | None:
    """How the broker's storage was formatted: "PLAINTEXT", "SASL_SSL", or None before the first start."""
    if not (_node_home(settings, 1) / "data" / "meta.properties").exists():
        return None
    marker = _mode_file(settings)
    return marker.read_text().strip() if marker.exists() else "PLAINTEXT"


def is_secure(settings: Settings) -> bool:
    """Whether this state folder's broker is the secure one."""
    return formatted_mode(settings) == PROTOCOL


def _check_mode(settings: Settings, secure: bool) -> None:
    formatted, wanted = formatted_mode(settings), PROTOCOL if secure else "PLAINTEXT"
    if formatted not in (None, wanted):
        home = _home(settings)
        raise ConfigError(f"the Kafka broker under {home} was formatted {formatted}; it cannot be started as {wanted}",
                          hint=f"start it {'without' if secure else 'with'} --secure as it was made, use another "
                               f"TUNELINE_STATE_DIR (and ports), or stop it and delete {home} to start over (its events are lost)")


def management_settings(settings: Settings) -> Settings:
    """The settings to manage this state folder's broker with: admin's credentials when it is the secure one,
    unless the settings carry credentials of their own."""
    if is_secure(settings) and not settings.kafka_security_protocol:
        return SecureKafka.of(settings).as_identity(settings, "admin")
    return settings


def require(tool: str, what: str) -> str:
    """The path of a program, or DependencyMissing with one sentence saying what to install."""
    path = shutil.which(tool)
    if path is None:
        raise DependencyMissing(f"{tool} was not found on PATH: install {what} to run the embedded Kafka broker "
                                "(or set TUNELINE_KAFKA_BOOTSTRAP to use an existing cluster).")
    return path


def ensure_jars(settings: Settings) -> Path:
    """Resolve the broker jars with Maven once; later calls reuse them."""
    jars = settings.kafka_jars_dir
    if jars.is_dir() and any(jars.glob("kafka_2.13-*.jar")):
        return jars
    require("java", "a Java 17+ runtime (e.g. apt-get install openjdk-17-jre-headless)")
    mvn = require("mvn", "Apache Maven (e.g. apt-get install maven)")
    cmd = [mvn, "-q", "-B", "-f", str(KAFKA_DIR / "pom.xml"), "dependency:copy-dependencies",
           f"-DoutputDirectory={jars}"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0 or not any(jars.glob("kafka_2.13-*.jar")):
        raise TransientError(f"Maven could not resolve the Kafka jars:\n{done.stdout[-2000:]}{done.stderr[-2000:]}",
                             hint="check that Maven Central is reachable and run again")
    return jars


def _java_cmd(settings: Settings, jars: Path, *args: str) -> list[str]:
    java = require("java", "a Java 17+ runtime (e.g. apt-get install openjdk-17-jre-headless)")
    heap = settings.kafka_heap
    return [java, f"-Xmx{heap}", f"-Xms{heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={KAFKA_DIR / 'log4j2.yaml'}", "-cp", f"{jars}/*", *args]


def _render_config(settings: Settings, secure: SecureKafka | None, node: int = 1) -> Path:
    home = _node_home(settings, node)
    port, controller_port = node_ports(settings, node)
    voters = ",".join(f"{n}@127.0.0.1:{node_ports(settings, n)[1]}" for n in _nodes(settings))
    replication = min(settings.embedded_brokers, 3)
    text = (KAFKA_DIR / "server.properties.template").read_text().format(
        port=port, controller_port=controller_port, data_dir=home / "data", node_id=node, voters=voters,
        replication=replication, min_isr=2 if replication >= 3 else 1,
    )
    path = home / "server.properties"
    if secure is None:
        path.write_text(text)
    else:
        write_private(path, (text + secure.server_properties(settings)).encode())
    return path


def _cluster_id(settings: Settings) -> str:
    """The id every node of this state folder's cluster is formatted with (made once)."""
    path = _home(settings) / "cluster-id"
    if not path.exists():
        path.write_text(uuid.uuid4().hex[:22])
    return path.read_text().strip()


def _format_storage(settings: Settings, jars: Path, config: Path, secure: SecureKafka | None, node: int = 1) -> None:
    if (_node_home(settings, node) / "data" / "meta.properties").exists():
        return
    # The mode first: storage that exists is then never taken for the other mode, even after a failed format.
    _mode_file(settings).write_text(PROTOCOL if secure else "PLAINTEXT")
    cluster_id = _cluster_id(settings)
    # Secure: every identity's SCRAM credential is in the metadata log before the broker first listens.
    users = secure.scram_args() if secure else []
    done = subprocess.run(_java_cmd(settings, jars, STORAGE_TOOL, "format", "-t", cluster_id, "-c", str(config), *users),
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise TransientError(f"formatting Kafka storage failed: {done.stdout[-1000:]}{done.stderr[-1000:]}")


def _pid_alive(pid: int) -> bool:
    _reap(pid)
    # The broker's command line names its main class: a pid reused by another program is not ours.
    return liveness.alive(pid, command_contains=MAIN_CLASS)


def _reap(pid: int) -> None:
    """Collect the exit status when the broker is our own child, so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def node_pid(settings: Settings, node: int) -> int | None:
    """The pid of one node's broker process, if it is alive."""
    try:
        pid = int(_pid_file(settings, node).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


def read_pid(settings: Settings) -> int | None:
    """The pid of our broker process (the first live node of a cluster), if one is alive."""
    return next((pid for pid in (node_pid(settings, n) for n in _nodes(settings)) if pid is not None), None)


def status(settings: Settings) -> BrokerStatus:
    """Where the broker is and whether it answers."""
    home = _node_home(settings, 1)
    return BrokerStatus(
        running=read_pid(settings) is not None, pid=read_pid(settings), bootstrap=settings.bootstrap,
        data_dir=home / "data", log_file=home / "broker.log", answering=broker_reachable(management_settings(settings), 2.0),
        secure=is_secure(settings), brokers=settings.embedded_brokers,
        nodes_running=sum(node_pid(settings, n) is not None for n in _nodes(settings)),
    )


def _made_size(settings: Settings) -> int | None:
    """The size of the cluster this state folder holds once its storage is formatted (None before)."""
    try:
        size = int((_home(settings) / "brokers").read_text())
    except (OSError, ValueError):
        size = 1  # a single node formatted before clusters existed has no size file
    formatted = _node_home(settings.replace(kafka_brokers=size), 1) / "data" / "meta.properties"
    return size if formatted.exists() else None


def _sized(settings: Settings, brokers: int | None, secure: bool) -> Settings:
    """The settings of the cluster to start: `brokers` nodes, checked against what the state folder holds."""
    made = _made_size(settings)
    wanted = brokers or settings.kafka_brokers or made or 1
    if made is not None and made != wanted:
        raise ConfigError(f"the Kafka cluster under {_home(settings)} has {made} node(s); it cannot be started with {wanted}",
                          hint=f"start it with --brokers {made}, use another TUNELINE_STATE_DIR (and ports), or stop it "
                               f"and delete {_home(settings)} to start over (its events are lost)")
    if secure and wanted > 1:
        raise ConfigError("the secure embedded broker runs on one node only",
                          hint="start it without --brokers, or point TUNELINE_KAFKA_BOOTSTRAP at a secured cluster")
    _home(settings).mkdir(parents=True, exist_ok=True)
    (_home(settings) / "brokers").write_text(str(wanted))
    return settings.replace(kafka_brokers=wanted)


def start(settings: Settings, timeout_s: float = 90.0, secure: bool = False, brokers: int | None = None) -> BrokerStatus:
    """Start the embedded broker (every node of the cluster) unless ours already runs; wait until it answers.

    `secure`: SASL_SSL with SCRAM and ACLs, its credentials made on first use under state_dir/kafka-secure.
    `brokers`: the cluster's size on its first start (later starts find it in the state folder).
    """
    if not settings.embedded_kafka:
        raise ConfigError(f"TUNELINE_KAFKA_BOOTSTRAP={settings.kafka_bootstrap} points at an external cluster; "
                          "there is no embedded broker to start")
    settings = _sized(settings, brokers, secure)
    _check_mode(settings, secure)
    credentials = SecureKafka.of(settings) if secure else None
    if credentials:
        credentials.prepare()
    if read_pid(settings) is None and (broker_reachable(settings, 1.0) or (
            credentials and broker_reachable(credentials.as_identity(settings, "admin"), 1.0))):
        raise ConfigError(f"something else already listens on {settings.bootstrap}",
                          hint="stop it, or set TUNELINE_KAFKA_PORT to a free port")
    for node in _nodes(settings):
        if node_pid(settings, node) is None:
            _launch(settings, credentials, node)
    _wait_answering(management_settings(settings), timeout_s)
    return status(settings)


def _launch(settings: Settings, secure: SecureKafka | None, node: int = 1) -> None:
    jars = ensure_jars(settings)
    home = _node_home(settings, node)
    (home / "data").mkdir(parents=True, exist_ok=True)
    config = _render_config(settings, secure, node)
    _format_storage(settings, jars, config, secure, node)
    log = open(home / "broker.log", "ab")
    proc = subprocess.Popen(_java_cmd(settings, jars, MAIN_CLASS, str(config)), stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True, cwd=home)
    _pid_file(settings, node).write_text(str(proc.pid))


def _wait_answering(settings: Settings, timeout_s: float) -> None:
    """Until the cluster answers with every node registered (a cluster elects its controller first)."""
    deadline = time.monotonic() + timeout_s
    log = _node_home(settings, 1) / "broker.log"
    while time.monotonic() < deadline:
        if broker_reachable(settings, 1.0) and brokers_registered(settings) >= settings.embedded_brokers:
            return
        if read_pid(settings) is None:
            raise TransientError(f"the Kafka broker exited during start-up; see {log}")
        time.sleep(0.3)
    raise TransientError(f"the Kafka broker did not answer within {timeout_s:.0f}s; see {log}")


def stop(settings: Settings, timeout_s: float = 30.0) -> bool:
    """Stop every node cleanly (SIGTERM, then SIGKILL after the timeout); returns whether one ran."""
    pids = {n: node_pid(settings, n) for n in _nodes(settings)}
    for pid in pids.values():
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(p is not None and _pid_alive(p) for p in pids.values()):
        time.sleep(0.2)
    for node, pid in pids.items():
        if pid is not None and _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        _pid_file(settings, node).unlink(missing_ok=True)
    return any(p is not None for p in pids.values())


def kill(settings: Settings, node: int = 1) -> int | None:
    """SIGKILL one node's broker (fault tests only); returns the pid killed."""
    pid = node_pid(settings, node)
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
        while _pid_alive(pid):
            time.sleep(0.05)
    return pid
