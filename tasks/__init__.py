"""Prefect tasks: one thin task per pipeline stage around the ``placewright`` core functions."""
