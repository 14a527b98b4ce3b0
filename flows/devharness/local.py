"""The whole pipeline on one machine: S3 (moto), queue, Prefect server, clamd, ``proofcheck serve``.

Used by the demo, the end-to-end tests and the benchmark. Every process it starts is recorded and
stopped by its PID in ``stop()``; nothing is left behind, nothing else is touched.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path

from flows.devharness import services
from flows.settings import PipelineSettings
from flows.storage import PackageRef, Store

FAKE_AWS = {  # moto checks no credentials; boto3 still wants some
    "AWS_ACCESS_KEY_ID": "proofcheck-local",
    "AWS_SECRET_ACCESS_KEY": "proofcheck-local",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class LocalPipeline:
    root: Path
    settings: PipelineSettings = field(default_factory=PipelineSettings)
    started: list[services.Service] = field(default_factory=list)
    clamd_dir: Path | None = None
    prefect: services.Service | None = None
    serve_process: services.Service | None = None
    env: dict[str, str] = field(default_factory=dict)

    # -- services -----------------------------------------------------------------------------------

    def start_s3(self, *, notifications: bool = True) -> Store:
        """moto's server with the bucket, versioning and (optionally) S3 -> SQS notifications."""
        os.environ.update({k: os.environ.get(k, v) for k, v in FAKE_AWS.items()})
        moto = services.start_moto(self.root / "logs")
        self.started.append(moto)
        self.settings = replace(
            self.settings,
            s3_endpoint=moto.url,
            work_dir=self.root / "work",
            index_url=f"sqlite:///{self.root / 'work' / 'index.sqlite3'}",
        )
        store = Store.connect(self.settings)
        store.ensure_bucket(versioning=True)
        if notifications:
            from flows.queue import EventQueue

            url, arn = EventQueue.create(self.settings, "proofcheck-events")
            self.settings = replace(self.settings, queue_url=url)
            store.configure_notifications(arn)
        return store

    def start_prefect(self, existing: services.Service | None = None) -> services.Service:
        self.prefect = existing or services.start_prefect_server(self.root / "logs", self.root / "prefect")
        if existing is None:
            self.started.append(self.prefect)
        self.env.update(self.prefect.env)
        return self.prefect

    def start_clamd(self) -> bool:
        """A private clamd through the ssi layer's manager; False when ClamAV is not installed."""
        directory = self.root / "clamd"
        answer = subprocess.run(
            [sys.executable, "-m", "validators.ssi.clamd_manager", "start", "--dir", str(directory)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if answer.returncode != 0:
            return False
        self.clamd_dir = directory
        for line in answer.stdout.splitlines():
            if "=" in line:
                name, value = line.strip().split("=", 1)
                self.env[name] = value
        return True

    def child_env(self) -> dict[str, str]:
        return {**FAKE_AWS, **self.settings.to_env(), **self.env}

    def start_serve(self, limit: int = 2, extra: Iterable[str] = ()) -> services.Service:
        argv = [sys.executable, "-m", "validators.cli", "serve", "--limit", str(limit), *extra]
        url = self.prefect.url if self.prefect else ""
        self.serve_process = services.start_process(
            "serve",
            argv,
            url=url,
            log_dir=self.root / "logs",
            env=self.child_env(),
            cwd=Path(__file__).resolve().parents[2],
        )
        self.started.append(self.serve_process)
        return self.serve_process

    def stop_serve(self) -> None:
        if self.serve_process is not None:
            self.serve_process.stop()
            self.started.remove(self.serve_process)
            self.serve_process = None

    def stop(self) -> None:
        """Stop, by PID, everything this pipeline started (newest first)."""
        for service in reversed(self.started):
            with suppress(Exception):
                service.stop()
        self.started.clear()
        if self.clamd_dir is not None:
            subprocess.run(
                [sys.executable, "-m", "validators.ssi.clamd_manager", "stop", "--dir", str(self.clamd_dir)],
                capture_output=True,
                timeout=60,
                check=False,
            )
            self.clamd_dir = None

    # -- packages -----------------------------------------------------------------------------------

    def upload(self, store: Store, key: str, data: bytes) -> PackageRef:
        answer = store.client.put_object(Bucket=store.bucket, Key=key, Body=data)
        return PackageRef(
            store.bucket, key, str(answer["ETag"]).strip('"'), answer.get("VersionId"), len(data)
        )

    def wait_verdicts(self, store: Store, refs: list[PackageRef], timeout: float) -> dict[PackageRef, str]:
        """JSON verdict key of each version, once every one has one (or the timeout is over)."""
        found: dict[PackageRef, str] = {}
        deadline = time.monotonic() + timeout
        while len(found) < len(refs) and time.monotonic() < deadline:
            for ref in refs:
                if ref not in found:
                    keys = store.verdict_keys_of(ref)
                    if keys:
                        found[ref] = keys[0]
            if len(found) < len(refs):
                time.sleep(0.2)
        return found


@contextmanager
def local_pipeline(root: Path) -> Iterator[LocalPipeline]:
    pipeline = LocalPipeline(root)
    try:
        yield pipeline
    finally:
        pipeline.stop()
