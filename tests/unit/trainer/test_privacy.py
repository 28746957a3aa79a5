"""DP-SGD (training.privacy): the goal option, the plan, Opacus' accounting, and private training on the tiny BERT."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.kernel.errors import ConfigError, InvalidInput
from services.kernel.goal import ApproachSpec, PrivacySpec, load_goal, parse_goal
from services.kernel.modeling import adapter_digest
from services.kernel.settings import REPO_ROOT
from services.trainer.adapters.training_loop import ADAPTER_DIR, OUTCOME_FILE, train
from services.trainer.domain import privacy
from services.trainer.domain.envelope import envelope_from_json

GOAL_FILE = REPO_ROOT / "goals" / "banking77.yaml"


def _goal_data(**training: Any) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(GOAL_FILE.read_text())
    data["training"].update(training)
    return data


# ---------------------------------------------------------------- the goal option


def test_a_goal_without_privacy_keeps_its_version() -> None:
    goal = load_goal(GOAL_FILE)
    assert goal.training.privacy is None and goal.acceptance.privacy_epsilon is None
    assert "privacy" not in goal.canonical_json()
    private = parse_goal(_goal_data(privacy={"epsilon": 8}))
    assert private.version != goal.version and '"privacy":{' in private.canonical_json()
    assert private.training.privacy == PrivacySpec(epsilon=8.0, delta=1e-5, max_grad_norm=1.0, noise_multiplier=None,
                                                   accountant="rdp")


@pytest.mark.parametrize(("privacy_spec", "message"), [
    ({"epsilon": 0}, "training.privacy.epsilon: Input should be greater than 0"),
    ({"delta": 1e-5}, "training.privacy.epsilon: Field required"),
    ({"epsilon": 8, "delta": 0}, "training.privacy.delta: Input should be greater than 0"),
    ({"epsilon": 8, "delta": 0.05}, "choose delta < 1/(train rows)"),
    ({"epsilon": 8, "max_grad_norm": -1}, "training.privacy.max_grad_norm: Input should be greater than 0"),
    ({"epsilon": 8, "noise_multiplier": 0}, "training.privacy.noise_multiplier: Input should be greater than 0"),
    ({"epsilon": 8, "accountant": "gdp"}, "training.privacy.accountant"),
    ({"epsilon": 8, "sigma": 1}, "training.privacy.sigma: unknown key"),
])
def test_a_bad_privacy_option_is_refused_naming_its_key(privacy_spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_goal(_goal_data(privacy=privacy_spec))


def test_requiring_privacy_epsilon_without_dp_training_is_refused() -> None:
    data = _goal_data()
    data["acceptance"]["privacy_epsilon"] = {"max": 8}
    with pytest.raises(ConfigError, match="acceptance.privacy_epsilon needs training.privacy"):
        parse_goal(data)
    data["training"]["privacy"] = {"epsilon": 8}
    assert parse_goal(data).acceptance.declared()[-1] == "privacy_epsilon"


# ---------------------------------------------------------------- the plan and the accounting


def _opacus_epsilon(accountant: str, sigma: float, q: float, steps: int, delta: float) -> float:
    """What an Opacus accountant says after `steps` DP-SGD steps, stepped one by one as a training loop would."""
    from opacus.accountants import create_accountant  # type: ignore[import-untyped]  # opacus ships no type information

    acc = create_accountant(mechanism=accountant)
    for _ in range(steps):
        acc.step(noise_multiplier=sigma, sample_rate=q)
    return float(acc.get_epsilon(delta=delta))


@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_the_calibrated_noise_spends_the_budget_as_opacus_accounts_it(accountant: str) -> None:
    spec = PrivacySpec.model_validate({"epsilon": 3.0, "delta": 1e-5, "accountant": accountant})
    p = privacy.plan(spec, rows=5000, batch_size=50, planned_steps=200)
    assert p.calibrated and p.steps == p.planned_steps == 200 and p.sample_rate == pytest.approx(0.01)
    spent = privacy.epsilon(accountant, p.noise_multiplier, p.sample_rate, p.steps, p.delta)
    assert spent == pytest.approx(_opacus_epsilon(accountant, p.noise_multiplier, p.sample_rate, 200, 1e-5), rel=1e-9)
    assert 3.0 - 0.05 <= spent <= 3.0


def test_a_given_noise_multiplier_stops_the_run_at_the_budget() -> None:
    p = privacy.plan(PrivacySpec(epsilon=1.0, noise_multiplier=1.5), rows=1000, batch_size=50, planned_steps=400)
    assert not p.calibrated and 0 < p.steps < 400 and p.stops_at_budget
    assert privacy.epsilon("rdp", 1.5, 0.05, p.steps, 1e-5) <= 1.0 < privacy.epsilon("rdp", 1.5, 0.05, p.steps + 1, 1e-5)
    loose = privacy.plan(PrivacySpec(epsilon=50.0, noise_multiplier=2.0), rows=1000, batch_size=50, planned_steps=40)
    assert loose.steps == 40 and not loose.stops_at_budget


@pytest.mark.parametrize(("spec", "rows", "batch", "message"), [
    (PrivacySpec(epsilon=8, delta=1e-3), 5000, 32, r"delta: 0.001 is not below 1/n = 1/5000"),
    (PrivacySpec(epsilon=8), 20, 32, "batch_size: 32 is not below the 20 train rows"),
    (PrivacySpec(epsilon=0.01, noise_multiplier=0.3), 5000, 32, "one step at noise multiplier 0.3 already spends more"),
])
def test_a_plan_that_cannot_hold_is_refused(spec: PrivacySpec, rows: int, batch: int, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        privacy.plan(spec, rows, batch, 100)


def test_poisson_batches_are_seeded_and_sampled_at_the_rate() -> None:
    a = [privacy.poisson_batch(2000, 0.05, 7, step) for step in range(40)]
    assert a == [privacy.poisson_batch(2000, 0.05, 7, step) for step in range(40)]
    assert a[0] != a[1] and a[0] != privacy.poisson_batch(2000, 0.05, 8, 0)
    assert sum(len(b) for b in a) / 40 == pytest.approx(100, rel=0.1)
    assert len({len(b) for b in a}) > 1  # the batch size varies: Poisson, not fixed-size batches


def test_the_envelope_carries_the_plan_and_an_ordinary_one_keeps_its_bytes(tmp_path: Path) -> None:
    from services.trainer.domain.envelope import Envelope, Hardware

    hw = Hardware("cpu", "x", 1, "t", "r", "tr", "p", "3.11")
    plain = Envelope("c", "l", "g", "v", "{}", "d", "dv", "t", "e", "tu", "eu", {"training": 1}, 1, False, hw)
    assert b"privacy" not in plain.to_json()
    p = privacy.plan(PrivacySpec(epsilon=8), rows=1000, batch_size=20, planned_steps=50)
    private = Envelope("c", "l", "g", "v", "{}", "d", "dv", "t", "e", "tu", "eu", {"training": 1}, 1, False, hw,
                       privacy=p.as_dict())
    back = envelope_from_json(json.loads(private.to_json()))
    assert back == private and back.digest != plain.digest and back.privacy is not None
    assert back.privacy["noise_multiplier"] == p.noise_multiplier and back.privacy["accountant"] == "rdp"
    assert envelope_from_json(json.loads(plain.to_json())) == plain


# ---------------------------------------------------------------- private training on the tiny BERT


@pytest.fixture
def private_run(loop_config, local_session):
    """Train with DP-SGD in this process; returns (outcome.json, adapter digest, session)."""
    def run(workdir: Path, spec: PrivacySpec | None = None, resume: Path | None = None, **changes: Any):
        cfg = loop_config(**changes)
        p = privacy.plan(spec or PrivacySpec(epsilon=8.0, delta=1e-3), len(cfg.texts), cfg.batch_size, 6)
        session = local_session(resume)
        train(loop_config(privacy=p, **changes), session, workdir)
        outcome = json.loads((workdir / "final" / OUTCOME_FILE).read_text())
        digest = adapter_digest(workdir / "final" / ADAPTER_DIR) if outcome["status"] == "succeeded" else ""
        return outcome, digest, session
    return run


@pytest.mark.parametrize("method", ["lora", "full"])
def test_seeded_noise_makes_a_private_run_repeat_to_the_same_digest(private_run, tmp_path: Path, method: str) -> None:
    approach = ApproachSpec(method=method, r=4)  # type: ignore[arg-type]  # the parametrised literal
    a, digest_a, _ = private_run(tmp_path / "a", approach=approach)
    b, digest_b, _ = private_run(tmp_path / "b", approach=approach)
    assert a["status"] == "succeeded" and a["steps"] == 6 and digest_a == digest_b
    assert a["metrics"] == b["metrics"] and a["curve"] == []  # a DP run publishes no loss curve
    _, digest_c, _ = private_run(tmp_path / "c", seed=8, approach=approach)
    assert digest_c != digest_a


def test_the_reported_epsilon_is_opacus_accountant_for_the_rate_and_steps(private_run, tmp_path: Path) -> None:
    outcome, _, _ = private_run(tmp_path / "run")
    m = outcome["metrics"]
    assert m["privacy_steps"] == 6 and m["privacy_accountant_rdp"] == 1.0 and m["privacy_delta"] == 1e-3
    assert m["privacy_sample_rate"] == pytest.approx(8 / 48)
    expected = _opacus_epsilon("rdp", m["privacy_noise_multiplier"], 8 / 48, 6, 1e-3)
    assert m["privacy_epsilon"] == pytest.approx(expected, rel=1e-12) and m["privacy_epsilon"] <= 8.0


def test_a_private_run_stops_at_the_budget(private_run, tmp_path: Path) -> None:
    outcome, _, _ = private_run(tmp_path / "run", PrivacySpec(epsilon=2.0, delta=1e-3, noise_multiplier=1.0))
    m = outcome["metrics"]
    assert outcome["status"] == "succeeded" and 0 < outcome["steps"] < 6 and m["privacy_stopped_at_budget"] == 1.0
    assert m["privacy_epsilon"] <= 2.0 < privacy.epsilon("rdp", 1.0, 8 / 48, outcome["steps"] + 1, 1e-3)


def test_a_resumed_private_run_ends_with_the_same_digest_and_epsilon(private_run, tmp_path: Path) -> None:
    full, digest, session = private_run(tmp_path / "full")
    first = next(d for _, d in session.reports if d is not None and d.name.startswith("step-"))
    resumed, again, _ = private_run(tmp_path / "resumed", resume=first)
    assert again == digest and resumed["metrics"]["privacy_epsilon"] == full["metrics"]["privacy_epsilon"]
