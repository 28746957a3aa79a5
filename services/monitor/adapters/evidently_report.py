"""The Evidently 0.7 drift report of a window against the reference profile, as standalone HTML."""

from __future__ import annotations

import os
import tempfile

import pandas as pd

from services.kernel.features import CATEGORICAL_FEATURES, EMBEDDING_FEATURES, NUMERIC_FEATURES


def render_drift_html(reference: pd.DataFrame, window: pd.DataFrame) -> bytes:
    """Data drift on the logged features (embedding projection included) and prediction drift on the label."""
    # Imported here: Evidently takes ~10 s to import, and only the report job needs it.
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=list(NUMERIC_FEATURES + EMBEDDING_FEATURES),
                                categorical_columns=list(CATEGORICAL_FEATURES))
    snapshot = Report([DataDriftPreset()]).run(Dataset.from_pandas(window, data_definition=definition),
                                               Dataset.from_pandas(reference, data_definition=definition))
    fd, path = tempfile.mkstemp(suffix=".html")
    os.close(fd)
    try:
        snapshot.save_html(path)
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.unlink(path)
