"""Settings copies are validated as the environment is: a misspelt name or a wrong value raises."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from services.ingest.settings import IngestSettings
from services.kernel.settings import Settings


def test_replace_validates_and_keeps_the_rest(tmp_path: Path) -> None:
    base = Settings(state_dir=tmp_path, otlp_endpoint="http://collector:4317", kafka_port=19092)
    copy = base.replace(deployer_address="127.0.0.1:6000", state_dir="relative/state")
    assert copy.deployer_address == "127.0.0.1:6000"
    assert copy.state_dir == Path("relative/state").resolve()            # the field's validator ran
    assert (copy.otlp_endpoint, copy.kafka_port) == ("http://collector:4317", 19092)  # an aliased field survives
    assert base.deployer_address == "127.0.0.1:50051"                    # the original is unchanged


def test_replace_refuses_unknown_names_and_wrong_values(tmp_path: Path) -> None:
    base = Settings(state_dir=tmp_path)
    with pytest.raises(ValueError, match="no setting 'kafka_prot'"):
        base.replace(kafka_prot=9092)
    with pytest.raises(ValidationError):
        base.replace(kafka_port="not a port")
    with pytest.raises(ValidationError):
        base.replace(consumer_max_attempts=0)                             # ge=1
    # model_copy, by contrast, takes both without a word: the reason replace exists.
    unchecked: object = base.model_copy(update={"kafka_prot": 1, "kafka_port": "x"}).kafka_port
    assert unchecked == "x"


def test_a_service_settings_copy_keeps_its_class_and_fields(tmp_path: Path) -> None:
    ingest = IngestSettings(state_dir=tmp_path, max_text_bytes=99).replace(pii_action="reject")
    assert isinstance(ingest, IngestSettings) and (ingest.max_text_bytes, ingest.pii_action) == (99, "reject")
    with pytest.raises(ValidationError):
        ingest.replace(pii_action="ignore")


def test_an_empty_path_variable_means_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNELINE_AT_REST_KEY_FILE", "")
    monkeypatch.setenv("TUNELINE_GRPC_TLS_CERT", "")
    s = Settings(state_dir=tmp_path)
    assert s.at_rest_key_file is None and s.grpc_tls_cert is None


def test_sqlite_stores_sync_every_commit_unless_told_otherwise(tmp_path):
    """A commit a consumer acknowledged must survive power loss: FULL by default (measured cost in the README)."""
    from services.kernel.store import Store

    def synchronous(settings: Settings) -> int:
        store = Store.open(settings, "probe")
        with store.engine.connect() as conn:
            value = int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one())
        store.engine.dispose()
        return value

    assert synchronous(Settings(state_dir=tmp_path / "a")) == 2  # FULL
    assert synchronous(Settings(state_dir=tmp_path / "b", store_sqlite_synchronous="NORMAL")) == 1
