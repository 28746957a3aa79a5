"""The evaluator's adapters, one technology each."""
