import time

import pytest

from services.deployer.domain.routing import bucket
from services.deployer.serving.batcher import MicroBatcher
from services.deployer.serving.config import ServingConfig
from services.deployer.serving.predictions import AdapterNotLoaded
from services.deployer.serving.responder import Question, Responder
from services.kernel.errors import InvalidInput, NotFound


@pytest.fixture
def serving(kit, routing):
    pool = kit.FakePool([kit.digest(1), kit.digest(2)])
    config = ServingConfig(max_batch_items=4)
    batcher = MicroBatcher(pool, config)
    batcher.start()
    observer, log = kit.RecordingObserver(), kit.ListLog()
    responder = Responder(routing, pool, batcher, observer, log, config)
    yield responder, pool, observer, log
    batcher.stop()


def rid_in_bucket(below: int, above_or_eq: int = 0) -> str:
    return next(f"r{i}" for i in range(10_000) if above_or_eq <= bucket(f"r{i}") < below)


def test_answer_carries_label_provenance_and_policy(kit, routing, serving):
    responder, _, observer, log = serving
    champion = kit.slot(1)
    routing.set(kit.route(champion))
    a = responder.answer(Question("banking", "label:2 conf:0.8 move money", top_k=2))
    assert (a.label, round(a.confidence, 3), a.escalate) == ("transfer", 0.8, False)
    assert [lbl for lbl, _ in a.top_k] == ["transfer", "card_lost"]
    assert a.slot == champion and a.request_id
    (goal, slot, outcome), = observer.seen
    assert (goal, slot.digest, outcome.label, outcome.error) == ("banking", champion.digest, "transfer", False)
    entry, = log.entries
    assert (entry.variant, entry.adapter_digest, entry.label, entry.text) == ("champion", champion.digest, "transfer", "")
    assert entry.token_count == 6 and entry.text_length == len("label:2 conf:0.8 move money")
    assert entry.margin == pytest.approx(0.7)


def test_low_confidence_and_blocked_labels_escalate(kit, routing, serving):
    responder = serving[0]
    routing.set(kit.route(kit.slot(1), threshold=0.6, blocked={"refund"}))
    low = responder.answer(Question("banking", "label:0 conf:0.5 hm"))
    blocked = responder.answer(Question("banking", "label:1 conf:0.99 refund me"))
    fine = responder.answer(Question("banking", "label:0 conf:0.7 lost card"))
    assert low.escalate and "below 0.600" in low.escalate_reason
    assert blocked.escalate and "blocked" in blocked.escalate_reason
    assert not fine.escalate


def test_text_is_logged_only_when_the_goal_allows_it(kit, routing, serving):
    responder, _, _, log = serving
    routing.set(kit.route(kit.slot(1), log_text=True))
    responder.answer(Question("banking", "hello there"))
    assert log.entries[-1].text == "hello there"


def test_canary_serves_its_buckets_and_falls_back_to_the_champion_when_not_loaded(kit, routing, serving):
    responder, pool, _, _ = serving
    routing.set(kit.route(kit.slot(1), kit.slot(2, "canary", 50), "canary"))
    canary_rid, champion_rid = rid_in_bucket(50), rid_in_bucket(100, 50)
    assert responder.answer(Question("banking", "x", canary_rid)).slot.role == "canary"
    assert responder.answer(Question("banking", "x", champion_rid)).slot.role == "champion"
    pool.unload(kit.digest(2))
    fallback = responder.answer(Question("banking", "x", canary_rid))
    assert (fallback.slot.role, fallback.slot.digest) == ("champion", kit.digest(1))


def test_a_champion_not_in_the_pool_is_never_served(kit, routing, serving):
    responder, pool, _, _ = serving
    routing.set(kit.route(kit.slot(3)))  # digest 3 was never loaded
    with pytest.raises(AdapterNotLoaded):
        responder.answer(Question("banking", "x"))
    assert all(d != kit.digest(3) for d, _ in pool.batches)


def test_mirror_gets_the_same_text_and_the_champions_label(kit, routing, serving):
    responder, pool, observer, log = serving
    routing.set(kit.route(kit.slot(1), kit.slot(2, "mirror", 0), "mirror"))
    a = responder.answer(Question("banking", "label:1 refund please"))
    deadline = time.monotonic() + 5
    while len(observer.seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.001)
    mirror = [(s, o) for _, s, o in observer.seen if s.role == "mirror"]
    assert a.slot.role == "champion" and len(mirror) == 1
    slot, outcome = mirror[0]
    assert (slot.digest, outcome.label, outcome.champion_label) == (kit.digest(2), "refund", "refund")
    assert sorted(e.variant for e in log.entries) == ["champion", "mirror"]


def test_model_failure_is_reported_to_the_observer_as_an_error(kit, routing, serving):
    responder, pool, observer, log = serving
    routing.set(kit.route(kit.slot(1)))
    pool.fail_with = RuntimeError("cuda oom")
    with pytest.raises(RuntimeError):
        responder.answer(Question("banking", "x"))
    (_, _, outcome), = observer.seen
    assert outcome.error and outcome.error_code == "INTERNAL"
    assert log.entries[-1].error


def test_unknown_goal_and_invalid_input(kit, routing, serving):
    responder = serving[0]
    with pytest.raises(NotFound):
        responder.answer(Question("nobody", "x"))
    routing.set(kit.route(kit.slot(1)))
    with pytest.raises(InvalidInput, match="empty"):
        responder.answer(Question("banking", " "))
    with pytest.raises(InvalidInput, match="request_id"):
        responder.answer(Question("banking", "x", "bad\nid"))


def test_batches_validate_every_item_before_running_any(kit, routing, serving):
    responder, pool, _, _ = serving
    routing.set(kit.route(kit.slot(1)))
    with pytest.raises(InvalidInput, match=r"requests\[1\]"):
        responder.answer_many([Question("banking", "fine"), Question("banking", "bad\x00")])
    with pytest.raises(InvalidInput, match="limit is 4"):
        responder.answer_many([Question("banking", "x")] * 5)
    assert pool.batches == []
    answers = responder.answer_many([Question("banking", f"label:{i % 3} t") for i in range(3)])
    assert [a.label for a in answers] == ["card_lost", "refund", "transfer"]
