"""The HTTP job service (``placewright serve``): jobs are flow runs of the place-product deployment.

- :mod:`service.records`: the service's own durable records (SQLite): API keys (hashed), jobs,
  idempotency keys, the webhook outbox and every delivery attempt.
- :mod:`service.webhooks`: Standard Webhooks events, signed per key, delivered from the outbox.
- :mod:`service.engine`: the Prefect side: the deployment, flow runs as jobs, states, cancelling.
- :mod:`service.worker`: warm worker processes that claim flow runs and run them in-process.
- :mod:`service.app` and :mod:`service.routers`: the FastAPI application.
"""
