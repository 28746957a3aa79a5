"""The trainer's pure rules: data order, learning-rate schedule, run triggers, the envelope."""
