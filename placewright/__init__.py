"""Placewright: product placement images from a product photo and scene prompts.

The image-processing core lives in this package and knows nothing of Prefect; the
Prefect tasks and flows that orchestrate it live in the top-level ``tasks`` and
``flows`` packages.
"""

__version__ = "0.1.0"
