"""Settings, read once per process from the environment (prefix TUNELINE_) and passed down.

Services extend `Settings` with their own fields; nothing else in Tuneline reads os.environ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.kernel.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
DEV_TOKEN = "tuneline-dev-token"
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


class Settings(BaseSettings):
    """What every Tuneline process needs: where state lives, how to reach Kafka, stores, artifacts."""

    # validate_by_name: `replace` re-validates a dump, whose keys are field names, not the aliases.
    model_config = SettingsConfigDict(env_prefix="TUNELINE_", extra="ignore", env_nested_delimiter="__", validate_by_name=True)

    state_dir: Path = Field(default=Path(".tuneline"), description="Stores, artifacts, logs, pids, spans.")
    # Kafka: empty means the embedded broker that `tuneline kafka start` runs on kafka_port.
    kafka_bootstrap: str = ""
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_heap: str = "512m"
    kafka_jars_dir: Path = REPO_ROOT / "deploy" / "kafka" / "target" / "libs"
    kafka_partitions: int = 3
    # Replicas per topic; 0: the embedded cluster's size up to 3, or the external cluster's default.
    kafka_replication: int = Field(0, ge=0)
    # Nodes of the embedded cluster; 0: as many as `tuneline kafka start --brokers N` made (1 by default).
    # Node i (from 0) listens on kafka_port + 2i, its controller on kafka_controller_port + 2i.
    kafka_brokers: int = Field(0, ge=0, le=5)
    # Kafka client security, named as librdkafka names them (TUNELINE_KAFKA_SECURITY_PROTOCOL is
    # librdkafka's security.protocol, and so on); empty means a plaintext, unauthenticated connection.
    # `tuneline kafka start --secure` writes these for each service under state_dir/kafka-secure.
    kafka_security_protocol: str = ""
    kafka_sasl_mechanism: str = ""
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = ""
    kafka_ssl_ca_location: Path | None = None
    kafka_ssl_certificate_location: Path | None = None
    kafka_ssl_key_location: Path | None = None
    # How long the bus keeps inference.logged (its topic's retention.ms, set when the topic is made).
    # A goal whose policy.log_retention_days is shorter gets no text in its log: the bus would keep it longer.
    inference_log_retention_days: int = Field(7, ge=1, le=3650)
    # Prepended to every topic and consumer group: tests use a fresh one each, deployments leave it empty.
    namespace: str = ""
    # Stores: "{service}" is replaced by the service name; empty means one SQLite file per service.
    store_url: str = ""
    # Connections per store, and how long a transaction waits for one before retrying.
    store_pool_size: int = Field(8, ge=1)
    store_pool_timeout_s: float = Field(30.0, gt=0.0)
    # SQLite stores: FULL syncs the WAL at every commit, so a commit a consumer acknowledged (offset
    # committed) survives power loss; NORMAL commits about 1.7x as fast (tuneline bench store) and may lose
    # the last commits on power loss (never on a process crash). README "Durability".
    store_sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    # The embedded PostgreSQL server (`tuneline postgres start`, services.kernel.postgres) listens here.
    postgres_port: int = 55432
    # Artifacts: a local folder or any fsspec URL (s3://bucket/prefix); empty means state_dir/artifacts.
    artifact_root: str = ""
    # Consumers: retries for transient errors before a message is dead-lettered.
    # 5 attempts from 0.2 s doubling (capped at 5 s), jittered: about 1.5-3 s of retries in all.
    consumer_max_attempts: int = Field(5, ge=1)
    consumer_backoff_s: float = Field(0.2, ge=0.0)
    consumer_backoff_cap_s: float = Field(5.0, ge=0.0)
    # A consumer that stops heartbeating (crashed, killed) loses its partitions after this long; a
    # restarted replica waits out the same time before its group rebalances.
    consumer_session_timeout_s: float = Field(10.0, ge=6.0, le=300.0)
    # A test hook for RELIABILITY.md R3: SIGKILL this process right after the store transaction
    # of the named event type commits, before its offset is committed. Never set in production.
    crash_after_commit: str = ""
    instance: str = ""
    log_level: str = "INFO"
    otlp_endpoint: str = Field(
        default="", validation_alias=AliasChoices("TUNELINE_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
    )
    # Metrics (services.kernel.metrics): where each process serves Prometheus' /metrics. Port 0: any free
    # port, written into the process's ready file (`tuneline status` shows it); empty: no listener.
    metrics_address: str = "127.0.0.1:0"
    # gRPC: the deployer's and the monitor's addresses, and the bearer tokens they accept.
    deployer_address: str = "127.0.0.1:50051"
    monitor_address: str = "127.0.0.1:50052"
    grpc_tokens: list[str] = [DEV_TOKEN]
    grpc_token: str = DEV_TOKEN
    grpc_tls_cert: Path | None = None
    grpc_tls_key: Path | None = None
    grpc_tls_client_ca: Path | None = None
    # gRPC clients (CLI, load generator, status, demo): the CA that signs the servers' certificates
    # (set: TLS; unset: plaintext), and a client certificate and key for servers that require mTLS.
    grpc_tls_ca: Path | None = None
    grpc_tls_client_cert: Path | None = None
    grpc_tls_client_key: Path | None = None
    # Scoped, hashed gRPC credentials (services.kernel.credentials; `tuneline tokens issue`); empty:
    # state_dir/credentials.json when it exists.
    grpc_credentials_file: Path | None = None
    # Encryption at rest: a file holding a 32-byte AES-256-GCM key (raw or base64); unset: blobs and
    # snapshots are stored in plaintext.
    at_rest_key_file: Path | None = None
    # Signed decisions (services.kernel.signing): the key pairs' folder (empty: state_dir/keys), and
    # whether a missing pair is made at first use (the embedded mode; a deployment mounts its keys).
    keys_dir: Path | None = None
    signing_keys_auto: bool = True

    @field_validator("state_dir")
    @classmethod
    def _absolute(cls, v: Path) -> Path:
        return v.expanduser().resolve()

    @field_validator("kafka_ssl_ca_location", "kafka_ssl_certificate_location", "kafka_ssl_key_location", "grpc_tls_cert",
                     "grpc_tls_key", "grpc_tls_client_ca", "grpc_tls_ca", "grpc_tls_client_cert", "grpc_tls_client_key",
                     "grpc_credentials_file", "at_rest_key_file", "keys_dir", mode="before")
    @classmethod
    def _empty_is_unset(cls, v: object) -> object:
        """An empty variable (`TUNELINE_AT_REST_KEY_FILE=`) means unset, not the working directory."""
        return None if v == "" else v

    def replace(self, **changes: object) -> Self:
        """A copy with `changes`, validated as the environment is: an unknown name or a wrong value raises.

        Not `model_copy(update=...)`, which validates nothing (a misspelt key or a string for a port passes).
        The copy does not read the environment again.
        """
        unknown = sorted(set(changes) - set(type(self).model_fields))
        if unknown:
            raise ValueError(f"{type(self).__name__} has no setting {', '.join(map(repr, unknown))}")
        return type(self).model_validate({**self.model_dump(), **changes})

    def require_safe_bind(self, address: str) -> None:
        """Refuse (ConfigError) a gRPC server listening on `address` with the public development token.

        The development token is in this file for everyone to read: it is accepted only on a loopback bind.
        """
        host = address.rsplit(":", 1)[0] if ":" in address else address
        if DEV_TOKEN in self.grpc_tokens and host not in _LOOPBACK_HOSTS:
            raise ConfigError(f"the development token {DEV_TOKEN!r} would be accepted on {address}, which is not a loopback address",
                              hint="set TUNELINE_GRPC_TOKENS to a JSON list of your own tokens (e.g. from "
                                   "python -c 'import secrets; print(secrets.token_urlsafe(32))'), or bind to 127.0.0.1")

    @property
    def bootstrap(self) -> str:
        """The Kafka bootstrap servers everything connects to."""
        return self.kafka_bootstrap or ",".join(f"127.0.0.1:{self.kafka_port + 2 * i}" for i in range(self.embedded_brokers))

    @property
    def embedded_kafka(self) -> bool:
        """Whether Tuneline runs its own broker (no external cluster configured)."""
        return not self.kafka_bootstrap

    @property
    def artifacts(self) -> str:
        """The artifact store's root (a folder or fsspec URL)."""
        return self.artifact_root or str(self.state_dir / "artifacts")

    def topic(self, event: str) -> str:
        """The topic of an event, e.g. topic("dataset.published") -> "tuneline.dataset.published"."""
        return f"{self.namespace}tuneline.{event}"

    def group(self, consumer: str) -> str:
        """The Kafka consumer group of a named consumer."""
        return f"{self.namespace}tuneline-{consumer}"

    @property
    def embedded_brokers(self) -> int:
        """How many nodes the embedded cluster has: kafka_brokers, else what its state folder records, else 1."""
        if self.kafka_brokers:
            return self.kafka_brokers
        try:
            return int((self.state_dir / "kafka" / "brokers").read_text())
        except (OSError, ValueError):
            return 1

    @property
    def replication(self) -> int:
        """Replicas of a new topic: kafka_replication, else the embedded cluster's size up to 3, else the broker's default (-1)."""
        if self.kafka_replication:
            return self.kafka_replication
        return min(self.embedded_brokers, 3) if self.embedded_kafka else -1

    def store_url_for(self, service: str) -> str:
        """The SQLAlchemy URL of a service's store."""
        if self.store_url:
            return self.store_url.replace("{service}", service)
        return f"sqlite:///{self.state_dir / 'stores' / f'{service}.db'}"

    def path(self, *parts: str) -> Path:
        """A path under the state folder, with its parent created."""
        p = self.state_dir.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p
