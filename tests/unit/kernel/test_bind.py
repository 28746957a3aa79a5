"""The public development token is accepted only on a loopback bind: a server elsewhere refuses to start."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.kernel.errors import ConfigError
from services.kernel.settings import DEV_TOKEN, Settings


@pytest.mark.parametrize("address", ["127.0.0.1:50051", "localhost:0", "[::1]:50052"])
def test_loopback_binds_accept_the_development_token(tmp_path: Path, address: str) -> None:
    Settings(state_dir=tmp_path).require_safe_bind(address)


@pytest.mark.parametrize("address", ["0.0.0.0:50051", "[::]:50051", "10.1.2.3:50052", "deployer:50051"])
def test_other_binds_refuse_it_and_say_what_to_set(tmp_path: Path, address: str) -> None:
    with pytest.raises(ConfigError, match="not a loopback address") as refused:
        Settings(state_dir=tmp_path).require_safe_bind(address)
    assert "TUNELINE_GRPC_TOKENS" in (refused.value.hint or "")
    # Tokens of one's own: any bind.
    Settings(state_dir=tmp_path, grpc_tokens=["a-long-random-token"]).require_safe_bind(address)
    with pytest.raises(ConfigError):  # the development token among others is still the development token
        Settings(state_dir=tmp_path, grpc_tokens=["mine", DEV_TOKEN]).require_safe_bind(address)
