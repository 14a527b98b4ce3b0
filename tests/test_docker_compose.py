"""The production stack's wiring, checked without Docker (it cannot run here): services, ports, env, volumes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

DOCKER = Path(__file__).resolve().parents[1] / "docker"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))
    return document


def _port_of(url: str) -> tuple[str, int]:
    match = re.match(r"^[a-z+]+://(?:[^@/]+@)?([a-z0-9-]+):(\d+)", url)
    assert match, url
    return match.group(1), int(match.group(2))


def test_the_stack_has_every_part(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) >= {
        "seaweedfs", "clamd", "postgres", "prefect-server", "deploy", "worker", "bridge",
    }
    assert "minio" not in " ".join(str(s.get("image", "")) for s in compose["services"].values())


def test_pipeline_services_are_built_from_this_repository(compose: dict[str, Any]) -> None:
    for name in ("deploy", "worker", "bridge"):
        service = compose["services"][name]
        assert service["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}, name
        assert (DOCKER / ".." / service["build"]["dockerfile"]).resolve().is_file()
    dockerfile = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    assert "pip install" in dockerfile and "[pipeline]" in dockerfile
    assert re.search(r"^USER (?!root)", dockerfile, re.MULTILINE), "the pipeline must not run as root"


def test_upstream_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if "build" in service:
            continue
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name} uses an unpinned image {image}"


def test_environment_points_at_the_services_that_exist(compose: dict[str, Any]) -> None:
    services = compose["services"]
    env = services["worker"]["environment"]
    assert env == services["bridge"]["environment"] == services["deploy"]["environment"]
    host, port = _port_of(env["PREFECT_API_URL"])
    assert host == "prefect-server" and str(port) in " ".join(services["prefect-server"]["command"])
    host, port = _port_of(env["PROOFCHECK_S3_ENDPOINT"])
    assert host == "seaweedfs" and f"-s3.port={port}" in services["seaweedfs"]["command"]
    host, port = _port_of(env["PROOFCHECK_INDEX_URL"])
    assert host == "postgres" and port == 5432
    assert env["PROOFCHECK_INDEX_URL"].startswith("postgresql+psycopg://")
    clamd_host, clamd_port = env["PROOFCHECK_CLAMD"].split(":")
    assert clamd_host == "clamd"
    assert f"TCPSocket {clamd_port}" in (DOCKER / "clamd.conf").read_text(encoding="utf-8")
    assert env["PREFECT_SERVER_ALLOW_EPHEMERAL_MODE"] == "false"
    db_url = services["prefect-server"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]
    assert db_url.startswith("postgresql+asyncpg://") and _port_of(db_url)[0] == "postgres"


def test_workers_and_bridge_wiring(compose: dict[str, Any]) -> None:
    services = compose["services"]
    worker = services["worker"]
    assert worker["command"][:2] == ["worker", "start"]
    pool = worker["command"][worker["command"].index("--pool") + 1]
    assert services["deploy"]["command"] == ["deploy", "--work-pool", pool]
    assert worker["deploy"]["replicas"] >= 1
    assert services["bridge"]["command"] == ["serve", "--no-runner"]
    for name in ("worker", "bridge"):
        assert "prefect-server" in services[name]["depends_on"]


def test_state_lives_in_named_volumes(compose: dict[str, Any]) -> None:
    services = compose["services"]
    declared = set(compose["volumes"])
    for name, path in (("seaweedfs", "/data"), ("clamd", "/var/lib/clamav"),
                       ("postgres", "/var/lib/postgresql/data")):
        mounts = dict(v.split(":", 1)[::-1] for v in services[name]["volumes"] if ":" in v)
        source = next((src for dst, src in ((m.split(":")[0], s) for m, s in mounts.items()) if dst == path), None)
        assert source in declared, f"{name} keeps {path} outside a named volume"
    for mount in (m for s in services.values() for m in s.get("volumes", [])):
        source = mount.split(":", 1)[0]
        if source.startswith("./"):
            assert (DOCKER / source).exists() or (DOCKER / (source[2:] + ".template")).exists(), source


def test_clamd_alerts_instead_of_passing_silently() -> None:
    conf = (DOCKER / "clamd.conf").read_text(encoding="utf-8")
    assert "AlertExceedsMax yes" in conf and "AlertEncrypted yes" in conf


def _statements(policy: dict[str, Any], effect: str) -> list[dict[str, Any]]:
    return [s for s in policy["Statement"] if s["Effect"] == effect]


def test_bucket_policy_denies_until_verdict_and_quarantine() -> None:
    policy = json.loads((DOCKER / "bucket-policy.json").read_text(encoding="utf-8"))
    denies = _statements(policy, "Deny")
    until = [s for s in denies if "s3:ExistingObjectTag/proofcheck-status" in json.dumps(s.get("Condition", {}))]
    assert until and until[0]["Condition"]["Null"]["s3:ExistingObjectTag/proofcheck-status"] == "true"
    quarantine = [s for s in denies if "proofcheck-quarantine" in json.dumps(s.get("Condition", {}))]
    assert quarantine and "s3:GetObjectVersion" in quarantine[0]["Action"]
    areas = [r for s in denies for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])]
    assert "arn:aws:s3:::proofcheck/quarantine/*" in areas
    assert "arn:aws:s3:::proofcheck/reports/dryrun/*" in areas  # dry runs never reach instructors
