"""Kafka client security in one place: the TUNELINE_KAFKA_* settings as librdkafka and faust configs.

Every producer, consumer and admin client (confluent-kafka) merges `librdkafka_config`, and every
faust app (aiokafka) takes `faust_credentials`. Nothing set means plaintext without authentication,
and then both add nothing: the client configs are exactly what they were before security existed.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping

import faust
from faust.types.auth import CredentialsT, SASLMechanism

from services.kernel.errors import ConfigError
from services.kernel.settings import Settings

_SASL = ("SASL_PLAINTEXT", "SASL_SSL")
_TLS = ("SSL", "SASL_SSL")
PROTOCOLS = ("PLAINTEXT", "SSL", *_SASL)


def librdkafka_config(settings: Settings) -> dict[str, str]:
    """The security.* / sasl.* / ssl.* librdkafka properties that are set (none: an empty dict)."""
    pairs = {
        "security.protocol": settings.kafka_security_protocol,
        "sasl.mechanism": settings.kafka_sasl_mechanism,
        "sasl.username": settings.kafka_sasl_username,
        "sasl.password": settings.kafka_sasl_password,
        "ssl.ca.location": str(settings.kafka_ssl_ca_location or ""),
        "ssl.certificate.location": str(settings.kafka_ssl_certificate_location or ""),
        "ssl.key.location": str(settings.kafka_ssl_key_location or ""),
    }
    return {name: value for name, value in pairs.items() if value}


# What librdkafka accepts as a property's value.
ConfigValue = str | int | float | bool


def client_config(settings: Settings, extra: Mapping[str, ConfigValue] | None = None) -> dict[str, ConfigValue]:
    """A confluent-kafka client's config: the bootstrap servers, the security settings, then `extra`."""
    return {"bootstrap.servers": settings.bootstrap, **librdkafka_config(settings), **(extra or {})}


def _protocol(settings: Settings) -> str:
    protocol = settings.kafka_security_protocol.upper() or "PLAINTEXT"
    if protocol not in PROTOCOLS:
        raise ConfigError(f"TUNELINE_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol!r} is not a Kafka protocol",
                          hint=f"one of {', '.join(PROTOCOLS)}")
    return protocol


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for SSL and SASL_SSL (the CA, and a client certificate when one is set); None otherwise."""
    if _protocol(settings) not in _TLS:
        return None
    ca = settings.kafka_ssl_ca_location
    context = ssl.create_default_context(cafile=str(ca) if ca else None)
    if settings.kafka_ssl_certificate_location:
        key = settings.kafka_ssl_key_location
        context.load_cert_chain(str(settings.kafka_ssl_certificate_location), str(key) if key else None)
    return context


def faust_credentials(settings: Settings) -> CredentialsT | None:
    """The same settings for a faust app (aiokafka underneath); None for plaintext, faust's default."""
    protocol = _protocol(settings)
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(ssl_context(settings))
    mechanism = settings.kafka_sasl_mechanism or "PLAIN"
    if mechanism not in {m.value for m in SASLMechanism}:
        raise ConfigError(f"TUNELINE_KAFKA_SASL_MECHANISM={mechanism!r} is not supported by the faust consumers",
                          hint=f"one of {', '.join(m.value for m in SASLMechanism)}")
    # faust picks SASL_SSL when it is given a TLS context and SASL_PLAINTEXT when not.
    return faust.SASLCredentials(username=settings.kafka_sasl_username, password=settings.kafka_sasl_password,
                                 ssl_context=ssl_context(settings), mechanism=mechanism)
