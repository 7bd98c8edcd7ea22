"""Prefect flows: the pipeline's orchestration, reading top to bottom, no image math."""
