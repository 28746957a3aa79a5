"""Ingest: turns `dataset.published` into a certified, versioned `dataset.registered` or a `dataset.rejected`."""
