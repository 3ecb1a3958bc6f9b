"""The calibration monitors: one module per monitor, registered in :mod:`monitors.registry`."""
