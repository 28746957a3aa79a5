import numpy as np

from services.deployer.serving.inference_log import LogEntry, NullLog, project_batch, to_message
from services.kernel.features import project


def entry(embedding, **kw) -> LogEntry:
    base = dict(request_id="r1", goal="banking", goal_version="gv", adapter_digest="sha256:" + "a" * 64,
                dataset_version="dv", deployment_id="dep", variant="canary", label="refund", confidence=0.8,
                margin=0.6, latency_ms=3.5, text_length=11, token_count=5, embedding=embedding, text="",
                escalated=False, error=False, error_code="", served_at_unix_ms=123, tenant="acme", trace_id="t",
                traceparent="")
    return LogEntry(**{**base, **kw})


def test_projection_is_the_kernels_per_row_and_handles_missing_embeddings():
    rng = np.random.default_rng(0)
    embs = [rng.standard_normal(32).astype(np.float32) for _ in range(3)]
    entries = [entry(embs[0]), entry(None, error=True), entry(embs[1]), entry(embs[2])]
    projected = project_batch(entries)
    assert projected[1] is None
    for i, e in ((0, embs[0]), (2, embs[1]), (3, embs[2])):
        row = projected[i]
        assert row is not None
        np.testing.assert_allclose(row, project(e[None, :])[0], rtol=1e-5)


def test_message_carries_every_field():
    m = to_message(entry(None, text="hello"), np.arange(8, dtype=np.float32))
    assert (m.goal_name, m.variant, m.label, m.tenant, m.text, m.token_count) == ("banking", "canary", "refund", "acme", "hello", 5)
    assert list(m.embedding_projection) == list(range(8)) and m.margin == 0.6 and m.served_at_unix_ms == 123


def test_null_log_loses_nothing_and_is_healthy():
    log = NullLog()
    log.record(entry(None))
    assert log.unlogged() == 0 and log.healthy()
