import subprocess
import sys

from services.kernel.settings import REPO_ROOT

FORBIDDEN = ("torch", "confluent_kafka", "faust", "grpc", "ray", "sqlalchemy", "evidently", "matplotlib")


def test_the_domain_imports_no_infrastructure():
    code = (
        "import sys, services.evaluator.domain.metrics, services.evaluator.domain.calibration, "
        "services.evaluator.domain.robustness, services.evaluator.domain.champion, services.evaluator.domain.gate, "
        "services.evaluator.domain.policy, services.evaluator.domain.latency, services.evaluator.domain.profile, "
        "services.evaluator.domain.report;"
        f"print(sorted(m for m in {FORBIDDEN!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": f"{REPO_ROOT}:{REPO_ROOT / 'protos'}"})
    assert out.stdout.strip() == "[]"
