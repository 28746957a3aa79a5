"""Pure evaluation rules: metrics, calibration, robustness, champion test, the gate. No I/O."""
