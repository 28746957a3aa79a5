"""The secure embedded broker's credentials: a CA, the broker's certificate, one SCRAM identity each.

`tuneline kafka start --secure` makes them once under state_dir/kafka-secure/ (a 0700 folder):

    ca.pem               the CA certificate clients trust (TUNELINE_KAFKA_SSL_CA_LOCATION)
    ca.key               the CA's private key (0600); only needed to issue another broker certificate
    tuneline-broker.pem  the broker's certificate (ECDSA P-256, services.kernel.pki), SAN 127.0.0.1 and
    tuneline-broker.key  localhost, server and client use, and its private key (0600)
    broker.pem           the two in one file, Kafka's PEM keystore (0600)
    passwords.json       each identity's SCRAM-SHA-512 password (0600)
    <identity>.env       the TUNELINE_KAFKA_* lines of one identity, to source (0600)

The clients' listener is SASL_SSL with SCRAM-SHA-512; the controller listener is TLS with client
certificates (only the broker's own certificate passes), so no anonymous principal is ever trusted.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, cast

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialUpsertion,
)

from services.kernel import pki
from services.kernel.bus.acls import ADMIN, IDENTITIES, grant
from services.kernel.bus.topics import admin, ensure_topics
from services.kernel.errors import ConfigError, TransientError
from services.kernel.settings import REPO_ROOT, Settings

S = TypeVar("S", bound=Settings)

PROTOCOL = "SASL_SSL"
MECHANISM = "SCRAM-SHA-512"
# The broker's principal on the controller listener (its certificate's subject), a super user.
BROKER_PRINCIPAL = "CN=tuneline-broker"
# Kafka's default for SCRAM-SHA-512 credentials made through the Admin API.
SCRAM_ITERATIONS = 4096
TEMPLATE = REPO_ROOT / "deploy" / "kafka" / "server-secure.properties.template"


@dataclass(frozen=True)
class SecureKafka:
    """The credentials folder of a secure broker, and the settings or environment of each identity."""

    folder: Path

    @classmethod
    def of(cls, settings: Settings) -> SecureKafka:
        """The folder that belongs to the broker of this state folder."""
        return cls(settings.state_dir / "kafka-secure")

    @property
    def ca(self) -> Path:
        """The CA certificate every client trusts."""
        return self.folder / "ca.pem"

    @property
    def keystore(self) -> Path:
        """The broker's private key followed by its certificate (Kafka's PEM keystore)."""
        return self.folder / "broker.pem"

    def prepare(self) -> None:
        """Make whatever is missing: the CA, the broker's certificate, passwords and env files (never replacing one)."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.folder, 0o700)
        if not self.ca.exists() or not self.keystore.exists():
            self._issue_certificates()
        passwords = self._passwords()
        missing = {i: secrets.token_urlsafe(24) for i in (ADMIN, *IDENTITIES) if i not in passwords}
        if missing:
            self._save_passwords({**passwords, **missing})
        for identity in (ADMIN, *IDENTITIES):
            self._write_env(identity)

    def password(self, identity: str) -> str:
        """An identity's SCRAM password (ConfigError when the folder does not know it)."""
        try:
            return self._passwords()[identity]
        except KeyError:
            raise ConfigError(f"no Kafka credentials for {identity!r} under {self.folder}",
                              hint="run `tuneline kafka start --secure` first") from None

    def as_identity(self, settings: S, identity: str) -> S:
        """These settings, connecting as `identity` over SASL_SSL."""
        return settings.replace(kafka_security_protocol=PROTOCOL, kafka_sasl_mechanism=MECHANISM, kafka_sasl_username=identity,
                                kafka_sasl_password=self.password(identity), kafka_ssl_ca_location=self.ca,
                                kafka_ssl_certificate_location=None, kafka_ssl_key_location=None)

    def env(self, identity: str) -> dict[str, str]:
        """The TUNELINE_KAFKA_* variables of `identity` (a child process's environment, an env file's lines)."""
        return {"TUNELINE_KAFKA_SECURITY_PROTOCOL": PROTOCOL, "TUNELINE_KAFKA_SASL_MECHANISM": MECHANISM,
                "TUNELINE_KAFKA_SASL_USERNAME": identity, "TUNELINE_KAFKA_SASL_PASSWORD": self.password(identity),
                "TUNELINE_KAFKA_SSL_CA_LOCATION": str(self.ca)}

    def scram_args(self) -> list[str]:
        """`kafka-storage format` arguments that bootstrap every identity's SCRAM credential."""
        return [arg for identity, password in sorted(self._passwords().items())
                for arg in ("--add-scram", f"{MECHANISM}=[name={identity},password={password}]")]

    def server_properties(self, settings: Settings) -> str:
        """The lines that turn the plaintext broker config into the secure one (appended: a later key wins)."""
        return TEMPLATE.read_text().format(port=settings.kafka_port, controller_port=settings.kafka_controller_port,
                                           admin_password=self.password(ADMIN), keystore=self.keystore, ca=self.ca,
                                           broker_principal=BROKER_PRINCIPAL)

    def provision(self, settings: Settings) -> int:
        """As admin: any missing SCRAM user, the topics of the settings' namespace, and every identity's ACLs there."""
        admin_settings = self.as_identity(settings, ADMIN)
        self.add_missing_users(admin_settings)
        ensure_topics(admin_settings)
        return grant(admin_settings)

    def add_missing_users(self, admin_settings: Settings) -> list[str]:
        """Create the SCRAM credential of each identity the running broker lacks (one added after formatting)."""
        client = admin(admin_settings)
        try:
            # Without a list of users the answer is one future (a dict of futures only when users are named).
            listing = cast("Future[dict[str, object]]", client.describe_user_scram_credentials(None))
            known = set(listing.result(timeout=30))
        except KafkaException as err:
            raise TransientError(f"could not list the broker's SCRAM users: {err}") from err
        missing = [i for i in self._passwords() if i not in known]
        self._upsert(client, missing)
        return missing

    def _upsert(self, client: AdminClient, identities: list[str]) -> None:
        passwords = self._passwords()
        changes: list[UserScramCredentialAlteration] = [
            UserScramCredentialUpsertion(i, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS), passwords[i].encode())
            for i in identities]
        if not changes:
            return
        for user, future in client.alter_user_scram_credentials(changes).items():
            try:
                future.result(timeout=30)
            except KafkaException as err:
                raise TransientError(f"the broker refused the SCRAM credential of {user}: {err}") from err

    def rotate(self, admin_settings: Settings, identity: str) -> None:
        """Give `identity` a new random password on the running broker, then in passwords.json and its env file.

        Clients connected keep their sessions; new connections need the new password. admin's is also the
        broker's own (server.properties, rendered at each start): restart the broker after rotating it.
        """
        old = self._passwords()
        if identity not in old:
            raise ConfigError(f"{identity!r} is not a Kafka identity", hint=f"one of {', '.join((ADMIN, *IDENTITIES))}")
        self._save_passwords({**old, identity: secrets.token_urlsafe(24)})
        try:
            self._upsert(admin(admin_settings), [identity])
        except TransientError:
            self._save_passwords(old)
            raise
        self._write_env(identity)

    def _passwords(self) -> dict[str, str]:
        path = self.folder / "passwords.json"
        if not path.exists():
            return {}
        loaded = json.loads(path.read_text())
        return {str(k): str(v) for k, v in loaded.items()}

    def _save_passwords(self, passwords: dict[str, str]) -> None:
        write_private(self.folder / "passwords.json", json.dumps(passwords, indent=2, sort_keys=True).encode())

    def _write_env(self, identity: str) -> None:
        lines = "".join(f"{name}={value}\n" for name, value in self.env(identity).items())
        write_private(self.folder / f"{identity}.env", lines.encode())

    def _issue_certificates(self) -> None:
        ca = pki.ensure_ca(self.folder, "Tuneline Kafka CA")
        broker = pki.ensure_leaf(ca, self.folder, BROKER_PRINCIPAL.removeprefix("CN="), ("127.0.0.1", "localhost"),
                                 client=True, server=True)
        # Kafka's PEM keystore: the PKCS#8 private key (no password) followed by the certificate.
        write_private(self.keystore, broker.key.read_bytes() + broker.cert.read_bytes())


def write_private(path: Path, data: bytes) -> None:
    """Replace a file atomically, readable by its owner only from the first byte."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
