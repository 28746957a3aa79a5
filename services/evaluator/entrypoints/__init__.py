"""The evaluator's entrypoints: the CLI and the runtime wiring."""
