"""The evaluator's settings: the kernel's plus how much of each measurement to run."""

from __future__ import annotations

from services.kernel.settings import Settings


class EvaluatorSettings(Settings):
    """Evaluator knobs (env TUNELINE_EVALUATOR_*)."""

    evaluator_batch_size: int = 64
    # Rows per perturbation kind (seeded sample); 4 kinds x 500 rows cost about two clean passes of banking77.
    evaluator_robustness_rows: int = 500
    evaluator_robustness_seed: int = 1234
    # Batch-1 requests timed for latency p50/p95: 200 keeps the p95 stable (10 samples above it) and cheap.
    evaluator_latency_rows: int = 200
    # Passes over those rows; each row keeps its fastest, so co-located services' bursts are not counted.
    evaluator_latency_repeats: int = 3
    evaluator_calibration_bins: int = 15
    evaluator_device: str = "cpu"
    # 0 leaves torch's default; the 2-core dev machine is shared, so tests and the demo set 1 or 2.
    evaluator_torch_threads: int = 0
