"""The trainer: turns goals and registered datasets into reproducible adapters with Ray Train."""
