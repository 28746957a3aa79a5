"""The evaluator: turns a finished training run into a fail-closed gate decision and a readable report.

Choices worth knowing (each also stated where it is implemented):
- Fail closed: every criterion in the goal's `acceptance` must be measured and pass; missing, NaN or
  erroring measurements fail with the reason (domain/gate.py, evaluation.py).
- slice_gap with no slice field is 0.0 with reason "no slice field" (nothing to be worse than the
  whole); a slice field the eval split lacks is NaN and fails (domain/metrics.py).
- robustness_drop is clean accuracy minus accuracy over all perturbed copies (4 kinds) of a seeded
  sample of up to 500 rows, on the same rows (domain/robustness.py); per-kind drops are reported.
- latency_p95_ms is batch-1 requests on a seeded sample of 200 rows on this machine after 10
  warm-up requests; throughput is the batched clean pass (evaluation.py).
- vs_champion: McNemar exact mid-p on the same rows; passes when not significantly worse at the
  goal's significance AND delta >= min_delta; "no champion serving" passes (domain/champion.py).
- An adapter or eval split whose bytes do not match their digest is never loaded: eval.failed with
  the integrity error in every criterion (job.py).
"""
