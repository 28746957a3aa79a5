"""The kernel's command line: the embedded broker, topics, signing keys, and traces."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import typer
from rich.console import Console
from rich.tree import Tree

from services.kernel import broker
from services.kernel.artifact_signing import artifact_key_id
from services.kernel.broker_security import SecureKafka
from services.kernel.bus.topics import align_topic_configs, ensure_topics
from services.kernel.settings import Settings
from services.kernel.signing import ARTIFACT_KEY, IDENTITIES, SIGNED_BY, init_keys, key_id, keys_dir, public_key
from services.kernel.telemetry import SpanRecord, read_spans

console = Console()
kafka_app = typer.Typer(help="The embedded Apache Kafka broker (KRaft, one node).", no_args_is_help=True)
keys_app = typer.Typer(help="The signing keys of Tuneline's identities (signed decisions).", no_args_is_help=True)


def _settings(state_dir: str | None) -> Settings:
    return Settings(state_dir=Path(state_dir)) if state_dir else Settings()


StateDir = typer.Option(None, "--state-dir", help="State folder (default: TUNELINE_STATE_DIR or ./.tuneline).")


@kafka_app.command("start")
def kafka_start(state_dir: str | None = StateDir,
                secure: bool = typer.Option(False, "--secure", help="SASL_SSL (SCRAM-SHA-512) and ACLs; credentials "
                                            "under the state folder's kafka-secure/."),
                brokers: int = typer.Option(0, "--brokers", min=0, max=5, help="Nodes of a new cluster (3: replication 3, "
                                            "min.insync.replicas 2); later starts find the size in the state folder.")) -> None:
    """Start the broker (every node) in the background (idempotent) and create the Tuneline topics."""
    s = _settings(state_dir)
    with console.status("starting Kafka (the first start resolves the broker jars with Maven)..."):
        st = broker.start(s, secure=secure, brokers=brokers or None)
        s = s.replace(kafka_brokers=st.brokers)
        management = broker.management_settings(s)
        created = ensure_topics(management)
        aligned = align_topic_configs(management)
        acls = SecureKafka.of(s).provision(s) if secure else 0
    nodes = f"{st.brokers} nodes, " if st.brokers > 1 else ""
    console.print(f"Kafka is up at [bold]{st.bootstrap}[/] ({nodes}pid {st.pid}); data {st.data_dir}; log {st.log_file}")
    if created:
        console.print(f"created {len(created)} topics")
    _print_aligned(aligned)
    if secure:
        folder = SecureKafka.of(s).folder
        console.print(f"SASL_SSL with ACLs ({acls} bindings); each identity's settings: {folder}/<identity>.env "
                      f"(set -a; . {folder}/operator.env; set +a)")


@kafka_app.command("rotate")
def kafka_rotate(identity: str = typer.Argument(..., help="admin, operator or a service"), state_dir: str | None = StateDir) -> None:
    """Give a secure broker's identity a new SCRAM password (its env file too); restart whoever uses it."""
    s = _settings(state_dir)
    SecureKafka.of(s).rotate(broker.management_settings(s), identity)
    console.print(f"new password for {identity} in {SecureKafka.of(s).folder / f'{identity}.env'}"
                  + ("; restart the broker (kafka stop, kafka start --secure) so that it uses it" if identity == "admin" else ""))


@kafka_app.command("stop")
def kafka_stop(state_dir: str | None = StateDir) -> None:
    """Stop the broker cleanly."""
    s = _settings(state_dir)
    console.print("Kafka stopped" if broker.stop(s) else "Kafka was not running")


@kafka_app.command("status")
def kafka_status(state_dir: str | None = StateDir) -> None:
    """Say whether the broker runs and where; exit 1 when it does not answer."""
    s = _settings(state_dir)
    st = broker.status(s)
    where = "external cluster" if not s.embedded_kafka else f"pid {st.pid}" if st.running else "not running"
    mode = ("; SASL_SSL with ACLs" if st.secure else "") + (f"; {st.nodes_running} of {st.brokers} nodes running" if st.brokers > 1 else "")
    console.print(f"Kafka {st.bootstrap}: {'answering' if st.answering else 'not answering'} ({where}{mode}); data {st.data_dir}")
    raise typer.Exit(0 if st.answering else 1)


@kafka_app.command("topics")
def kafka_topics(state_dir: str | None = StateDir) -> None:
    """Create every tuneline.* topic that is missing and give existing ones the configured retention (idempotent)."""
    management = broker.management_settings(_settings(state_dir))
    created = ensure_topics(management)
    console.print(f"created {len(created)} topics" if created else "all topics exist")
    _print_aligned(align_topic_configs(management))


def _print_aligned(aligned: list[str]) -> None:
    if aligned:
        console.print(f"configuration (retention, replicas in sync) brought to the settings on {', '.join(aligned)}")


def trace(trace_id: str = typer.Argument(..., help="A trace id (32 hex) or a traceparent."),
          state_dir: str | None = StateDir) -> None:
    """Print a trace as a tree from the local span files."""
    s = _settings(state_dir)
    tid = trace_id.split("-")[1] if trace_id.count("-") == 3 else trace_id
    spans = [sp for sp in read_spans(s.state_dir) if sp["trace_id"] == tid or any(ln["trace_id"] == tid for ln in sp["links"])]
    if not spans:
        console.print(f"no spans for trace {tid} under {s.state_dir / 'telemetry'}")
        raise typer.Exit(1)
    console.print(render_trace(tid, spans))


def render_trace(tid: str, spans: list[SpanRecord]) -> Tree:
    """A rich tree of spans: children under parents, linked spans under the span they link to."""
    by_id = {sp["span_id"]: sp for sp in spans}
    children: dict[str, list[SpanRecord]] = defaultdict(list)
    roots: list[SpanRecord] = []
    for sp in sorted(spans, key=lambda x: x["start_ns"]):
        parent = sp["parent_id"] if sp["parent_id"] in by_id else next((ln["span_id"] for ln in sp["links"] if ln["span_id"] in by_id), "")
        (children[parent] if parent else roots).append(sp)
    tree = Tree(f"trace {tid}")

    def add(node: Tree, sp: SpanRecord) -> None:
        ms = (sp["end_ns"] - sp["start_ns"]) / 1e6
        branch = node.add(f"[bold]{sp['service']}[/] {sp['name']} [dim]{ms:.1f} ms {sp['status'] if sp['status'] == 'ERROR' else ''}[/]")
        for child in children[sp["span_id"]]:
            add(branch, child)

    for root in roots:
        add(tree, root)
    return tree


@keys_app.command("init")
def keys_init(state_dir: str | None = StateDir) -> None:
    """Make every missing key pair under the keys folder: each identity's Ed25519 pair and the trainer's EC P-256
    artifact key, and the ingest's pseudonym key (an existing key is never replaced)."""
    settings = _settings(state_dir)
    made = init_keys(settings)
    console.print(f"keys in {keys_dir(settings)}: made {', '.join(made) or 'none (all present)'}")
    keys_show(state_dir)


@keys_app.command("show")
def keys_show(state_dir: str | None = StateDir) -> None:
    """Each identity's public key id, and the decisions it may sign."""
    settings = _settings(state_dir)
    for identity in IDENTITIES:
        decides = sorted(e for e, who in SIGNED_BY.items() if identity in who)
        key = public_key(settings, identity)
        console.print(f"{identity:>10}  {key_id(key) if key else '(no key)':<16}  signs {', '.join(decides) or 'its own events'}")
    artifacts = artifact_key_id(settings)
    console.print(f"{'trainer':>10}  {artifacts or '(no key)':<16}  signs the adapters it trains (model-signing, {ARTIFACT_KEY}.pub)")


@keys_app.command("at-rest-init")
def keys_at_rest_init(state_dir: str | None = StateDir,
                      rotate: bool = typer.Option(False, "--rotate", help="Put a new key in front of the file's keys: it "
                                                  "seals from now on, they still open what they sealed.")) -> None:
    """Make the AES-256-GCM key that seals artifacts at rest (mode 0600); an existing key file is never replaced."""
    from services.kernel.sealing import init_key_file

    settings = _settings(state_dir)
    path = settings.at_rest_key_file or keys_dir(settings) / "at-rest.key"
    made = init_key_file(path, rotate=rotate)
    console.print(f"at-rest key {made} in {path}; every service sets:")
    typer.echo(f"TUNELINE_AT_REST_KEY_FILE={path}")
    if rotate:
        console.print("restart the services, then run `tuneline keys at-rest-reseal` and drop the old lines from the file")


@keys_app.command("at-rest-reseal")
def keys_at_rest_reseal(state_dir: str | None = StateDir) -> None:
    """Seal every stored artifact with the key file's first key (plaintext from before the key, or an older key)."""
    from services.kernel.blobs import BlobStore

    store = BlobStore.from_settings(_settings(state_dir))
    done = store.reseal()
    console.print(f"sealed {done.blobs} blobs and {done.trees} trees with key {store.keys.current.name if store.keys else '-'}; "
                  f"{done.current} already were")


def register(app: typer.Typer) -> None:
    """Add the kernel's commands to the root CLI."""
    app.add_typer(kafka_app, name="kafka")
    app.add_typer(keys_app, name="keys")
    app.command("trace")(trace)
