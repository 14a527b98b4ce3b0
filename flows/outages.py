"""What the bridge's operator reads when a shared part is down: which part, not an exception class name.

``bridge iteration failed: TransientStorageError`` said nothing to an operator watching a SeaweedFS or
Postgres restart (tests/test_topology.py). The line now names the part and what it does meanwhile;
never document content (storage errors carry an operation and an error code only).
"""

from __future__ import annotations

import os


def describe(exc: BaseException) -> str:
    """One line naming the part that failed, for ``bridge iteration failed: ...``."""
    from flows.storage import StorageError

    name = type(exc).__name__
    if isinstance(exc, StorageError):
        return f"S3 storage unreachable or failing ({exc}); the package listing is retried, no upload is lost"
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if name == "PrefectHTTPStatusError" and isinstance(status, int):
        if status >= 500:
            return (f"Prefect API answered {status}: the Prefect server or its database (Postgres) is failing; "
                    "dispatch is retried")
        return f"Prefect API answered {status}; dispatch is retried"
    if name in {"ConnectError", "ConnectTimeout", "ReadTimeout", "RemoteProtocolError", "ReadError"} or isinstance(
        exc, ConnectionError
    ):
        where = os.environ.get("PREFECT_API_URL", "PREFECT_API_URL")
        return f"Prefect server unreachable at {where} ({name}); dispatch is retried"
    if name in {"OperationalError", "InterfaceError"}:
        return f"verdict index database unreachable ({name}); indexing is retried"
    return name


def missing_deployment(exc: BaseException) -> str:
    """The bridge cannot find the validation deployment: most often `proofcheck deploy` has not run."""
    from flows.deployments import VALIDATE

    if type(exc).__name__ == "ObjectNotFound":
        return (f"deployment {VALIDATE.full_name} is not registered on the Prefect server: "
                "run `proofcheck deploy --work-pool <pool>` (the bridge waits for it)")
    return f"deployment {VALIDATE.full_name} not readable: {describe(exc)}"
