"""A real S3 HTTP endpoint for tests: moto's server on 127.0.0.1, stoppable and restartable.

moto keeps its buckets in this process, so objects survive a stop/restart on the same port,
which is how the fault tests take the store away in the middle of a publish and bring it back.
"""

from __future__ import annotations

import logging
from typing import Any

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


class MotoS3:
    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        self._server_class = ThreadedMotoServer
        self._server: Any = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoS3:
        self._server = self._server_class(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        self.port = self._server.get_host_and_port()[1]
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
        )

    def make_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def new_bucket(self, stem: str = "placewright") -> str:
        """A fresh bucket with a unique name (tests share the server, not buckets)."""
        import uuid

        return self.make_bucket(f"{stem}-{uuid.uuid4().hex[:10]}")

    def objects(self, bucket: str, prefix: str = "") -> dict[str, dict]:
        """key -> {ETag, LastModified, Size} of every object under ``prefix``."""
        found: dict[str, dict] = {}
        paginator = self.client().get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                found[item["Key"]] = {k: item[k] for k in ("ETag", "LastModified", "Size")}
        return found
