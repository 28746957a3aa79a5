import grpc
import pytest

from services.deployer.entrypoints.grpc_auth import token_status

TOKENS = [b"first-token", b"second-token"]


@pytest.mark.parametrize("header, status", [
    (None, grpc.StatusCode.UNAUTHENTICATED),
    ("", grpc.StatusCode.UNAUTHENTICATED),
    ("first-token", grpc.StatusCode.UNAUTHENTICATED),
    ("Basic Zmlyc3Q=", grpc.StatusCode.UNAUTHENTICATED),
    ("Bearer ", grpc.StatusCode.UNAUTHENTICATED),
    ("Bearer wrong", grpc.StatusCode.PERMISSION_DENIED),
    ("Bearer first-token-x", grpc.StatusCode.PERMISSION_DENIED),
    ("Bearer first-toke", grpc.StatusCode.PERMISSION_DENIED),
    ("Bearer first-token", None),
    ("bearer second-token", None),
])
def test_token_matrix(header, status):
    assert token_status(header, TOKENS) == status


def test_no_configured_tokens_lets_nobody_in():
    assert token_status("Bearer anything", []) is grpc.StatusCode.PERMISSION_DENIED
