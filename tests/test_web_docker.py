"""The workbench in the compose stack, checked without Docker: same database and bucket as the pipeline,
a secret required, secure cookies, a health check on the route that needs no session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DOCKER = Path(__file__).resolve().parents[1] / "docker"


def test_the_workbench_service_shares_the_pipeline_database_and_bucket() -> None:
    compose: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))
    service = compose["services"]["workbench"]
    pipeline = compose["services"]["bridge"]["environment"]
    env = service["environment"]
    for name in ("PROOFCHECK_INDEX_URL", "PROOFCHECK_BUCKET", "PROOFCHECK_S3_ENDPOINT"):
        assert env[name] == pipeline[name], name
    assert "?" in env["PROOFCHECK_WEB_SECRET"]  # compose refuses to start without it
    assert env["PROOFCHECK_WEB_SECURE_COOKIES"] == "true"
    assert service["command"][0] == "web" and service["build"] == compose["services"]["bridge"]["build"]
    assert "/sante" in " ".join(service["healthcheck"]["test"])
    assert all(port.startswith("127.0.0.1:") for port in service["ports"])
    readme = (DOCKER / "README.md").read_text(encoding="utf-8")
    assert "PROOFCHECK_OIDC_ISSUER" in readme and "/oidc/retour" in readme
