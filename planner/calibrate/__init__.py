"""Calibration: fitting the time model's efficiency parameters to measurements."""
