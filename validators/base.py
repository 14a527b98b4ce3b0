"""The validator interface: what a check sees (a proof file, a context) and what it returns."""

from __future__ import annotations

import io
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, ClassVar

from validators.model import CheckState, Finding

DEFAULT_READ_LIMIT = 64 * 1024 * 1024


class FileTooLargeError(Exception):
    """A validator asked to hold a file in memory that is over its limit."""


class DeadlineExceededError(Exception):
    """Raised by cooperative checks when their time is up (the engine also enforces it)."""


@dataclass(frozen=True)
class ProofFile:
    """A file of the package (or a file found inside one), read-only.

    ``data`` holds in-memory content (embedded files, small members); otherwise ``disk_path`` points
    into the private work directory of the intake. Validators never write next to it.
    """

    path: str
    size: int
    sha256: str
    media_type: str
    data: bytes | None = None
    disk_path: Path | None = None
    depth: int = 0
    parent: str | None = None
    proof_id: str | None = None
    origin: str | None = None  # how a child was found: "cda:nonXMLBody", "zip member", "eml attachment"
    own_name: str | None = None  # a child's own name (its path is "<parent path>!<n>:<name>")

    @property
    def name(self) -> str:
        return PurePosixPath(self.own_name or self.path).name

    @property
    def extension(self) -> str:
        """Lower-case extension without the dot ("" when none)."""
        suffix = PurePosixPath(self.name).suffix
        return suffix[1:].lower() if suffix else ""

    def open(self) -> BinaryIO:
        if self.data is not None:
            return io.BytesIO(self.data)
        if self.disk_path is None:
            raise FileNotFoundError("proof file has neither data nor a path")
        return self.disk_path.open("rb")

    def read(self, limit: int = DEFAULT_READ_LIMIT) -> bytes:
        """The whole content, refusing files over ``limit`` bytes."""
        if self.size > limit:
            raise FileTooLargeError(f"{self.size} bytes is over the {limit}-byte limit for this check")
        if self.data is not None:
            return self.data
        with self.open() as stream:
            return stream.read(limit + 1)[:limit]

    def head(self, count: int = 8192) -> bytes:
        if self.data is not None:
            return self.data[:count]
        with self.open() as stream:
            return stream.read(count)


@dataclass(frozen=True)
class Embedded:
    """A file found inside another one, to be checked like any proof file (as a child)."""

    name: str
    data: bytes
    origin: str


@dataclass
class CheckResult:
    findings: list[Finding] = field(default_factory=list)
    state: CheckState = CheckState.RAN
    detail: str | None = None
    children: list[Embedded] = field(default_factory=list)


@dataclass
class CheckContext:
    """What a check may know besides the file: limits, time budget, the ruleset, the proof's expectations."""

    deadline: float = float("inf")
    cancelled: threading.Event = field(default_factory=threading.Event)
    ruleset: Any = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    expectations: Mapping[str, Any] = field(default_factory=dict)

    def time_left(self) -> float:
        return self.deadline - time.monotonic()

    def check_time(self) -> None:
        """Cooperative checks call this in loops; it raises once the engine gave up on them."""
        if self.cancelled.is_set() or time.monotonic() > self.deadline:
            raise DeadlineExceededError("time limit of the check exceeded")


class Validator(ABC):
    """One check, which describes itself; ``validators.registry`` finds it in its family's modules.

    A check declares its name, the rules it may emit (each must be in the catalogue: checked at load), the
    settings it reads and the ruleset components it reads. The result cache keys a result on exactly
    these (plus the file's bytes and the engine version), and re-validation re-runs the check only when
    one of its ruleset components changed. Leaving ``reads_settings`` or ``reads_ruleset`` as None
    is safe and costly: every setting, the whole ruleset version, counts.
    """

    name: ClassVar[str]
    rules: ClassVar[tuple[str, ...]]
    # Fields of ``validators.settings.EngineSettings`` this check reads (checked at load). Those that can
    # change a result are part of its result-cache key; None: not declared, every setting is.
    reads_settings: ClassVar[tuple[str, ...] | None] = None
    # Ruleset components its results depend on ("J66", "cda_xsd"; "JDV:*" is every synced value set).
    # (): none (the result depends on the bytes and the engine only); None: not declared, the whole ruleset.
    reads_ruleset: ClassVar[tuple[str, ...] | None] = None
    timeout: ClassVar[float] = 60.0
    # True for a check that mostly waits on another process (clamd): the engine starts it first and runs
    # the file's other checks meanwhile. Results are still combined in the validators' order.
    overlaps: ClassVar[bool] = False

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:  # noqa: B027 (a check may read none)
        """The registry builds every check with the run's settings; a check that reads some overrides this
        and takes them typed: ``EngineSettings.coerce(settings)``."""

    @abstractmethod
    def applies_to(self, file: ProofFile) -> bool:
        """Whether this check has anything to say about ``file``."""

    @abstractmethod
    def check(self, file: ProofFile, ctx: CheckContext) -> CheckResult:
        """Inspect ``file``; never execute, render or write its content outside the work dir."""

    def components(self) -> Mapping[str, str]:
        """Versioned inputs of this check that belong to the ruleset (e.g. {"J66": "2024..."})."""
        return {}

    def antivirus_provenance(self) -> Mapping[str, str]:
        """Signature database facts (not part of the ruleset version)."""
        return {}
