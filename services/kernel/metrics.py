"""Metrics: the OpenTelemetry metrics API, read by Prometheus at each process's `/metrics`, pushed over OTLP when configured.

Instruments are made once, at import, through `meter()`: the API's proxy meter forwards them to
the provider `setup_metrics()` installs, and a process that never installs one records into a
no-op. Names and units follow OpenTelemetry's semantic conventions where one exists
(`rpc.server.call.duration`, `messaging.*`); the rest are `tuneline.*`. Attributes are bounded:
goals, adapters (short digests), variants, status codes, gates, criteria; never a request id.

The endpoint listens on `metrics_address` (default 127.0.0.1 on a free port, written into the
process's ready file, where `tuneline status` and the demo find it), over TLS with the gRPC
server's certificate when one is configured, and requiring a client certificate when the gRPC
server does (the same trust as the gRPC APIs). Prometheus' own text parser reads what it serves.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from opentelemetry import metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from prometheus_client import start_http_server
from prometheus_client.samples import Sample

from services.kernel.errors import ConfigError, TransientError
from services.kernel.settings import Settings

log = logging.getLogger(__name__)

# Seconds, from a fast in-process call (1 ms) to a slow job step (1 min).
DURATION_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
Attributes = Mapping[str, str | int | float | bool]

_lock = threading.Lock()
_endpoint: MetricsEndpoint | None = None


def meter() -> metrics.Meter:
    """Tuneline's meter (the installed provider's, or a proxy that forwards once one is installed)."""
    return metrics.get_meter("tuneline")


def short_digest(digest: str) -> str:
    """An adapter's digest as a metric label: 12 hex digits, bounded and still unique in practice."""
    return digest.removeprefix("sha256:")[:12]


@dataclass
class MetricsEndpoint:
    """The process's /metrics listener (None address when metrics are off)."""

    address: str
    provider: MeterProvider
    server: WSGIServer | None

    def stop(self) -> None:
        """Close the listener and flush what OTLP has not yet pushed."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        self.provider.shutdown()


def setup_metrics(service: str, settings: Settings) -> MetricsEndpoint:
    """Install the process's meter provider once and serve /metrics on `metrics_address` (empty: no listener).

    ConfigError when the address is taken or malformed: a process that cannot be scraped says so at start.
    """
    global _endpoint
    with _lock:
        if _endpoint is not None:
            return _endpoint
        readers: list[MetricReader] = [PrometheusMetricReader()]
        if settings.otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=settings.otlp_endpoint)))
        views = [View(instrument_name="*duration*", aggregation=ExplicitBucketHistogramAggregation(DURATION_BUCKETS_S)),
                 View(instrument_name="*.size", aggregation=ExplicitBucketHistogramAggregation(SIZE_BUCKETS))]
        resource = Resource.create({"service.name": service, "service.instance.id": settings.instance or service})
        provider = MeterProvider(metric_readers=readers, resource=resource, views=views)
        metrics.set_meter_provider(provider)
        server, address = _serve(settings)
        _endpoint = MetricsEndpoint(address, provider, server)
        if address:
            log.info("metrics at %s://%s/metrics", "https" if settings.grpc_tls_cert else "http", address)
        return _endpoint


def _serve(settings: Settings) -> tuple[WSGIServer | None, str]:
    if not settings.metrics_address:
        return None, ""
    host, _, port = settings.metrics_address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"metrics address {settings.metrics_address!r} is not HOST:PORT",
                          hint="set TUNELINE_METRICS_ADDRESS to e.g. 127.0.0.1:9464 (port 0: any free port), or empty for none")
    tls = {}
    if settings.grpc_tls_cert and settings.grpc_tls_key:
        tls = {"certfile": str(settings.grpc_tls_cert), "keyfile": str(settings.grpc_tls_key)}
        if settings.grpc_tls_client_ca:
            tls |= {"client_cafile": str(settings.grpc_tls_client_ca), "client_auth_required": "yes"}
    try:
        server, _thread = start_http_server(int(port), addr=host, certfile=tls.get("certfile"), keyfile=tls.get("keyfile"),
                                            client_cafile=tls.get("client_cafile"),
                                            client_auth_required=bool(tls.get("client_auth_required")))
    except OSError as err:
        raise ConfigError(f"cannot serve metrics on {settings.metrics_address}: {err}",
                          hint="choose a free port in TUNELINE_METRICS_ADDRESS (port 0: any free port)") from err
    return server, f"{host}:{server.server_port}"


def shutdown_metrics() -> None:
    """Stop the listener and the provider (call at process exit)."""
    global _endpoint
    with _lock:
        if _endpoint is not None:
            _endpoint.stop()
            _endpoint = None


def scrape(settings: Settings, address: str, timeout_s: float = 10.0) -> str:
    """GET http(s)://ADDRESS/metrics as a Prometheus server would, with the gRPC clients' CA and client certificate.

    TransientError when the process does not answer (down, or not yet listening).
    """
    import ssl
    import urllib.error
    import urllib.request

    context: ssl.SSLContext | None = None
    if settings.grpc_tls_ca:
        context = ssl.create_default_context(cafile=str(settings.grpc_tls_ca))
        if settings.grpc_tls_client_cert and settings.grpc_tls_client_key:
            context.load_cert_chain(str(settings.grpc_tls_client_cert), str(settings.grpc_tls_client_key))
    url = f"{'https' if context else 'http'}://{address}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s, context=context) as reply:
            return str(reply.read().decode("utf-8"))
    except (urllib.error.URLError, OSError) as err:
        raise TransientError(f"no metrics from {url}: {err}", hint="is the service running? `tuneline status`") from err


def read_samples(text: str) -> list[Sample]:
    """Every sample of a /metrics text, read with prometheus_client's own parser."""
    from prometheus_client.parser import text_string_to_metric_families

    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def sample_total(samples: Iterable[Sample], name: str, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels` (e.g. every status of one goal)."""
    return sum(x.value for x in samples if x.name == name and all(x.labels.get(k) == v for k, v in labels.items()))


def metrics_address() -> str:
    """Where this process serves /metrics ("" when it does not)."""
    return _endpoint.address if _endpoint is not None else ""


Source = Callable[[], Iterable[tuple[float, Attributes]]]


class GaugeSet:
    """An observable gauge fed by sources that come and go (a server's queue, a relay's backlog).

    An instrument is made once per name; a component registers a source when it starts and removes it
    when it stops, so a gauge never reads a stopped component (or keeps it alive).
    """

    def __init__(self, name: str, unit: str, description: str) -> None:
        self._sources: dict[int, Source] = {}
        self._lock = threading.Lock()
        meter().create_observable_gauge(name, callbacks=[self._observe], unit=unit, description=description)

    def add(self, source: Source) -> Callable[[], None]:
        """Read `source` at each collection until the returned function is called."""
        key = id(source)
        with self._lock:
            self._sources[key] = source

        def remove() -> None:
            with self._lock:
                self._sources.pop(key, None)
        return remove

    def _observe(self, _options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            sources = list(self._sources.values())
        out: list[Observation] = []
        for source in sources:
            try:
                out.extend(Observation(value, dict(attrs)) for value, attrs in source())
            except Exception:  # a failing gauge source must not break the scrape of every other series
                log.exception("a gauge source failed")
        return out
