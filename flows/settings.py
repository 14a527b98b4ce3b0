"""The pipeline's settings, typed and checked at start, read the same way in every process.

Flow runs start in fresh processes (a runner's or a worker's), so configuration travels by environment
variables (and the optional ``PROOFCHECK_CONFIG`` file, its ``[pipeline]`` table), never by Python
objects: ``to_env`` gives the variables that rebuild these settings in a child process. The engine's
own settings (``validators.settings.EngineSettings``) ride along as ``engine_settings``. Every variable
is listed in ``docs/configuration.md``, generated from the declarations below.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from validators.settings import EngineSettings
from validators.settingslib import DEFAULT, SettingsBase, SettingsError, above, at_least, dir_or_absent, setting

GIB = 1024**3
EXECUTORS = ("warm", "process")

__all__ = ["EXECUTORS", "PipelineSettings", "SettingsError"]


def _url(value: Any) -> str | None:
    if value is None or "://" in str(value):
        return None
    return "expected a URL (scheme://host...)"


def _index_url(value: Any) -> str | None:
    if not value or str(value).startswith(("sqlite:", "postgresql")):
        return None
    return "expected sqlite:///path or postgresql://..."


@dataclass(frozen=True)
class PipelineSettings(SettingsBase):
    """Where packages and verdicts live (S3, the index), how runs are dispatched, retried and paced."""

    section_name: ClassVar[str] = "pipeline"

    bucket: str = setting(
        "proofcheck", doc="the S3 bucket (inbox/, dryrun/, reports/, quarantine/)", env="PROOFCHECK_BUCKET"
    )
    s3_endpoint: str | None = setting(
        None,
        doc="the S3 server (SeaweedFS, Ceph RGW, moto...); AWS credentials as usual for boto3",
        env="PROOFCHECK_S3_ENDPOINT",
        checks=(_url,),
        default_doc="AWS",
    )
    s3_region: str = setting("us-east-1", doc="the S3 region", env="PROOFCHECK_S3_REGION")
    queue_url: str | None = setting(
        None,
        doc="SQS queue receiving the bucket's `ObjectCreated` events",
        env="PROOFCHECK_QUEUE_URL",
        checks=(_url,),
        default_doc="none: the reconcile alone finds uploads",
    )
    index_url: str = setting(
        "",
        doc="the verdict index, `sqlite:///path` or `postgresql://...` (a password in it is never shown)",
        env="PROOFCHECK_INDEX_URL",
        checks=(_index_url,),
        default_doc="SQLite under the work dir",
    )
    work_dir: Path = setting(
        Path("var/pipeline"),
        doc="this machine's working folder (downloads, slots, local index)",
        env="PROOFCHECK_WORK_DIR",
        checks=(dir_or_absent,),
    )
    max_package_bytes: int = setting(
        GIB, doc="larger uploads get an `error` verdict without being downloaded", env="PROOFCHECK_MAX_PACKAGE_BYTES",
        checks=(above(0),),
    )
    check_slots: int = setting(
        2,
        doc="engine runs at once on this machine (set it to the number of cores; protects clamd and the CPU)",
        env="PROOFCHECK_CHECK_SLOTS",
        checks=(at_least(1),),
    )
    engine_retries: int = setting(
        1, doc="re-runs of the engine when a check could not run (clamd restarting...)",
        env="PROOFCHECK_ENGINE_RETRIES", checks=(at_least(0),),
    )
    engine_retry_delay: float = setting(
        3.0, doc="seconds before such a re-run", env="PROOFCHECK_ENGINE_RETRY_DELAY", checks=(at_least(0),)
    )
    stale_after: float = setting(
        900.0, doc="seconds after which a dispatched run not finished is presumed lost",
        env="PROOFCHECK_STALE_AFTER", checks=(above(0),),
    )
    max_attempts: int = setting(
        3, doc="dispatches of one package version before an `error` verdict is stored",
        env="PROOFCHECK_MAX_ATTEMPTS", checks=(at_least(1),),
    )
    reconcile_every: float = setting(
        60.0, doc="seconds between listings of the inbox and dry-run areas", env="PROOFCHECK_RECONCILE_EVERY",
        checks=(above(0),),
    )
    reconcile_horizon: float = setting(
        30.0,
        doc="days back the reconcile also lists replaced versions of zip packages (versioned bucket), so a version "
        "overwritten before its event was handled still gets its verdict; `0`: current versions only",
        env="PROOFCHECK_RECONCILE_HORIZON",
        checks=(at_least(0),),
    )
    folder_grace: float = setting(
        3600.0,
        doc="seconds after which the objects of a folder package that never got its `_READY` marker are "
        "validated one by one",
        env="PROOFCHECK_FOLDER_GRACE",
        checks=(above(0),),
    )
    retry_first: float = setting(
        60.0,
        doc="a submission whose verdict is not checked in full is re-run this many seconds after it, twice as "
        "long after each new incomplete verdict",
        env="PROOFCHECK_RETRY_FIRST",
        checks=(above(0),),
    )
    retry_max: float = setting(
        3600.0, doc="at most this many seconds between those re-runs", env="PROOFCHECK_RETRY_MAX", checks=(above(0),)
    )
    executor: Literal["warm", "process"] = setting(
        "warm",
        doc="how `proofcheck serve` runs validation runs: `warm` (long-lived processes with the engine loaded) "
        "or `process` (Prefect's runner, a process per run; needed to cancel runs from the UI)",
        env="PROOFCHECK_EXECUTOR",
    )
    result_cache: Path | None = setting(
        None,
        doc="per-file check results kept for re-validation (a volume shared by workers)",
        env="PROOFCHECK_RESULT_CACHE",
        checks=(dir_or_absent,),
        default_doc="`<work dir>/resultcache`",
    )
    signing_key: str | None = setting(
        None,
        doc="the operator's private key file signing every stored verdict, or `python:module:callable` "
        "(a KMS/HSM signer); `proofcheck serve` refuses to start when it cannot be loaded",
        env="PROOFCHECK_SIGNING_KEY",
        affects_results=False,
        default_doc="none: verdicts are stored unsigned, saying so",
    )
    valueset_source: str | None = setting(
        None,
        doc="where `proofcheck valuesets sync` and the daily sync fetch value sets (folder or base URL)",
        env="PROOFCHECK_VALUESET_SOURCE",
        default_doc="the NOS, `https://mos.esante.gouv.fr/NOS`",
    )
    valuesets: tuple[str, ...] = setting(
        (),
        doc="value sets synced, comma-separated names",
        env="PROOFCHECK_VALUESETS",
        default_doc="`JDV_J66-TypeCode-DMP`",
    )
    # The engine's settings (validators/settings.py): read from the same environment and file.
    engine_settings: EngineSettings = field(default_factory=EngineSettings.load)

    def __post_init__(self) -> None:
        if not isinstance(self.engine_settings, EngineSettings):  # a dict of overrides, as tests pass
            object.__setattr__(self, "engine_settings", EngineSettings.coerce(self.engine_settings))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PipelineSettings:
        """The pipeline's and the engine's settings from ``env`` (default: this process's), checked."""
        return cls.load(env)

    @classmethod
    def load(
        cls,
        env: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
        file_data: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> PipelineSettings:
        """Both sets of settings; every problem of either is in the one SettingsError."""
        env = os.environ if env is None else env
        problems: list[str] = []
        try:
            engine = EngineSettings.load(env, file_data=file_data)
        except SettingsError as exc:
            problems.extend(exc.problems)
            engine = EngineSettings()
        try:
            built = super().load(env, overrides, file_data, extra={**(extra or {}), "engine_settings": engine})
        except SettingsError as exc:
            raise SettingsError(problems + exc.problems) from None
        if problems:
            raise SettingsError(problems)
        return built

    @classmethod
    def derive(cls, values: dict[str, Any], sources: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
        if not values.get("index_url"):
            values["index_url"] = f"sqlite:///{(Path(values['work_dir']) / 'index.sqlite3').resolve()}"
            sources["index_url"] = f"{DEFAULT} (<work dir>/index.sqlite3)"
        return values, sources

    def check_together(self) -> list[str]:
        if self.retry_max < self.retry_first:
            return [f"PROOFCHECK_RETRY_MAX={self.retry_max:g} is below PROOFCHECK_RETRY_FIRST={self.retry_first:g}"]
        return []

    @property
    def result_cache_dir(self) -> Path:
        return self.result_cache or self.work_dir / "resultcache"

    def to_env(self) -> dict[str, str]:
        """The variables that make ``from_env`` give back these settings (for child processes)."""
        out: dict[str, str] = {}
        for f, spec in self.specs():
            value = getattr(self, f.name)
            if spec.env and value is not None and value != ():
                out[spec.env] = ",".join(value) if isinstance(value, tuple) else str(value)
        out["PROOFCHECK_ENGINE_SETTINGS"] = json.dumps(self.engine_settings.overrides(), sort_keys=True)
        return out
