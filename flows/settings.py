"""The pipeline's configuration, read from the environment (the same variables in every process).

Flow runs start in fresh processes (a runner's or a worker's), so configuration travels by environment
variables, never by Python objects. Every variable is documented in the README's pipeline section.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GIB = 1024**3


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    return int(raw) if raw not in (None, "") else default


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    return float(raw) if raw not in (None, "") else default


EXECUTORS = ("warm", "process")


def _executor(name: str) -> str:
    if name not in EXECUTORS:
        raise ValueError(f"PROOFCHECK_EXECUTOR must be one of {', '.join(EXECUTORS)}")
    return name


def _retry(env: Mapping[str, str]) -> tuple[float, float]:
    """The retry backoff of incomplete verdicts; refused when it could hammer (0) or never grow."""
    first = _float(env, "PROOFCHECK_RETRY_FIRST", 60.0)
    cap = _float(env, "PROOFCHECK_RETRY_MAX", 3600.0)
    if first <= 0 or cap < first:
        raise ValueError("PROOFCHECK_RETRY_FIRST must be > 0 and PROOFCHECK_RETRY_MAX >= PROOFCHECK_RETRY_FIRST")
    return first, cap


@dataclass(frozen=True)
class PipelineSettings:
    bucket: str = "proofcheck"
    s3_endpoint: str | None = None  # None: the AWS default chain; a URL for SeaweedFS, Ceph RGW, moto...
    s3_region: str = "us-east-1"
    queue_url: str | None = None  # SQS queue receiving the bucket's ObjectCreated events (optional)
    index_url: str = ""  # SQLAlchemy URL of the verdict index; default: SQLite under work_dir
    work_dir: Path = Path("var/pipeline")
    max_package_bytes: int = GIB  # bigger uploads get an error verdict without being downloaded
    check_slots: int = 2  # packages checked at once on one machine (protects clamd and the CPU)
    engine_retries: int = 1  # re-runs of the engine when a check could not run (clamd restarting...)
    engine_retry_delay: float = 3.0
    stale_after: float = 900.0  # a dispatched run not finished after this long is presumed lost
    max_attempts: int = 3  # dispatches of one package version before an error verdict is stored
    reconcile_every: float = 60.0
    # Days back the reconcile also lists replaced versions of zip packages (versioned bucket); 0: none.
    reconcile_horizon: float = 30.0
    folder_grace: float = 3600.0  # a folder's objects wait this long for its _READY marker
    # A verdict where a check did not run is re-run by the reconcile after retry_first seconds, then
    # twice as long after each new incomplete verdict, never more than retry_max apart.
    retry_first: float = 60.0
    retry_max: float = 3600.0
    # Who runs the validation runs `proofcheck serve` dispatches: "warm" (a pool of long-lived processes
    # that keep the engine and its rulesets loaded) or "process" (Prefect's runner: a new process a run).
    executor: str = "warm"
    engine_settings: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PipelineSettings:
        env = os.environ if env is None else env
        work_dir = Path(env.get("PROOFCHECK_WORK_DIR") or "var/pipeline")
        raw_engine = env.get("PROOFCHECK_ENGINE_SETTINGS") or "{}"
        engine_settings = json.loads(raw_engine)
        if not isinstance(engine_settings, dict):
            raise ValueError("PROOFCHECK_ENGINE_SETTINGS must be a JSON object")
        retry_first, retry_max = _retry(env)
        return cls(
            bucket=env.get("PROOFCHECK_BUCKET") or "proofcheck",
            s3_endpoint=env.get("PROOFCHECK_S3_ENDPOINT") or None,
            s3_region=env.get("PROOFCHECK_S3_REGION") or "us-east-1",
            queue_url=env.get("PROOFCHECK_QUEUE_URL") or None,
            index_url=env.get("PROOFCHECK_INDEX_URL")
            or f"sqlite:///{(work_dir / 'index.sqlite3').resolve()}",
            work_dir=work_dir,
            max_package_bytes=_int(env, "PROOFCHECK_MAX_PACKAGE_BYTES", GIB),
            check_slots=max(1, _int(env, "PROOFCHECK_CHECK_SLOTS", 2)),
            engine_retries=max(0, _int(env, "PROOFCHECK_ENGINE_RETRIES", 1)),
            engine_retry_delay=_float(env, "PROOFCHECK_ENGINE_RETRY_DELAY", 3.0),
            stale_after=_float(env, "PROOFCHECK_STALE_AFTER", 900.0),
            max_attempts=max(1, _int(env, "PROOFCHECK_MAX_ATTEMPTS", 3)),
            reconcile_every=_float(env, "PROOFCHECK_RECONCILE_EVERY", 60.0),
            reconcile_horizon=max(0.0, _float(env, "PROOFCHECK_RECONCILE_HORIZON", 30.0)),
            folder_grace=_float(env, "PROOFCHECK_FOLDER_GRACE", 3600.0),
            retry_first=retry_first,
            retry_max=retry_max,
            executor=_executor(env.get("PROOFCHECK_EXECUTOR") or "warm"),
            engine_settings=engine_settings,
        )

    def to_env(self) -> dict[str, str]:
        """The variables that make ``from_env`` give back these settings (for child processes)."""
        out = {
            "PROOFCHECK_BUCKET": self.bucket,
            "PROOFCHECK_S3_REGION": self.s3_region,
            "PROOFCHECK_INDEX_URL": self.index_url,
            "PROOFCHECK_WORK_DIR": str(self.work_dir),
            "PROOFCHECK_MAX_PACKAGE_BYTES": str(self.max_package_bytes),
            "PROOFCHECK_CHECK_SLOTS": str(self.check_slots),
            "PROOFCHECK_ENGINE_RETRIES": str(self.engine_retries),
            "PROOFCHECK_ENGINE_RETRY_DELAY": str(self.engine_retry_delay),
            "PROOFCHECK_STALE_AFTER": str(self.stale_after),
            "PROOFCHECK_MAX_ATTEMPTS": str(self.max_attempts),
            "PROOFCHECK_RECONCILE_EVERY": str(self.reconcile_every),
            "PROOFCHECK_RECONCILE_HORIZON": str(self.reconcile_horizon),
            "PROOFCHECK_FOLDER_GRACE": str(self.folder_grace),
            "PROOFCHECK_RETRY_FIRST": str(self.retry_first),
            "PROOFCHECK_RETRY_MAX": str(self.retry_max),
            "PROOFCHECK_EXECUTOR": self.executor,
            "PROOFCHECK_ENGINE_SETTINGS": json.dumps(dict(self.engine_settings)),
        }
        if self.s3_endpoint:
            out["PROOFCHECK_S3_ENDPOINT"] = self.s3_endpoint
        if self.queue_url:
            out["PROOFCHECK_QUEUE_URL"] = self.queue_url
        return out
