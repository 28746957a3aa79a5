"""TLS and mutual TLS: with a client CA configured, only clients holding a certificate it signed get in."""

import subprocess

import grpc
import pytest
from tuneline.serving.v1 import inference_pb2 as pb

from services.deployer.domain.routing import RoutingTable
from services.deployer.entrypoints.grpc_server import InferenceClient, build_server
from services.deployer.serving.config import ServingConfig
from services.deployer.serving.pool import AdapterPool

pytestmark = pytest.mark.integration


def openssl(*args: str, cwd) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def certs(tmp_path):
    d = tmp_path / "pki"
    d.mkdir()
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
            "-subj", "/CN=tuneline-test-ca", cwd=d)
    (d / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={name}", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.pem", "-days", "1", "-extfile", "san.ext", cwd=d)
    return d


def test_mutual_tls(certs, tiny_base, adapters, serving_settings, kit, tmp_path):
    pool = AdapterPool(tiny_base, device="cpu", work_dir=tmp_path / "pool")
    pool.load(*adapters[0])
    routing = RoutingTable()
    routing.set(kit.route(kit.slot(*adapters[0])))
    settings = serving_settings.replace(grpc_tls_cert=certs / "server.pem", grpc_tls_key=certs / "server.key",
                                        grpc_tls_client_ca=certs / "ca.pem")
    server = build_server(settings, routing, pool, kit.Recorder(), kit.Recorder(), config=ServingConfig())
    server.start()
    ca = (certs / "ca.pem").read_bytes()
    request = pb.PredictRequest(goal="banking", text="hello")

    def call(creds) -> grpc.StatusCode:
        channel = grpc.secure_channel(f"localhost:{server.port}", creds) if creds else \
            grpc.insecure_channel(f"localhost:{server.port}")
        try:
            InferenceClient(channel).Predict(request, metadata=kit.AUTH, timeout=10)
            return grpc.StatusCode.OK
        except grpc.RpcError as err:
            return err.code()
        finally:
            channel.close()

    try:
        with_cert = grpc.ssl_channel_credentials(ca, (certs / "client.key").read_bytes(), (certs / "client.pem").read_bytes())
        assert call(with_cert) == grpc.StatusCode.OK
        assert call(grpc.ssl_channel_credentials(ca)) == grpc.StatusCode.UNAVAILABLE  # no client certificate
        assert call(None) == grpc.StatusCode.UNAVAILABLE  # plaintext to a TLS port
    finally:
        server.stop(1)
