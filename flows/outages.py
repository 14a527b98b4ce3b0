"""What the bridge's operator reads when a shared part is down: which part, not an exception class name.

``bridge iteration failed: TransientStorageError`` said nothing to an operator watching a SeaweedFS or
Postgres restart (tests/test_topology.py). The line now names the part and what it does meanwhile;
never document content (storage errors carry an operation and an error code only).
"""

from __future__ import annotations

import functools
import os
import ssl


def describe(exc: BaseException) -> str:
    """One line naming the part that failed, for ``bridge iteration failed: ...``."""
    from flows.storage import StorageError

    name = type(exc).__name__
    if isinstance(exc, StorageError):
        return f"S3 storage unreachable or failing ({exc}); the package listing is retried, no upload is lost"
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if name == "PrefectHTTPStatusError" and isinstance(status, int):
        return _answered(status)
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


def probe_prefect(timeout: float = 2.0) -> str | None:
    """One unretried ``GET /health`` on the Prefect API: the outage line, or None when it answers.

    The Prefect client retries a refused connection for up to a minute without a word; a bridge idle or
    blocked in those retries then said nothing while the server was down (tests/test_topology.py). The
    bridge's watch thread (``Bridge.watch_prefect``) probes every few seconds so the operator reads which
    part is down while it is down, and when it is back.
    """
    import httpx
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:  # ephemeral API in the process: nothing to reach
        return None
    try:
        response = httpx.get(f"{url.rstrip('/')}/health", timeout=timeout, verify=_tls_like_prefect())
    except httpx.HTTPError as exc:
        return describe(exc)
    return _answered(response.status_code) if response.status_code >= 500 else None


@functools.cache  # read once: the probe runs every few seconds
def _tls_like_prefect() -> ssl.SSLContext:
    """The certificate checks Prefect's own client makes (its CA file, or none when told to skip them).

    With httpx's defaults a server behind a private CA would read as down at every probe.
    """
    from prefect.settings import PREFECT_API_SSL_CERT_FILE, PREFECT_API_TLS_INSECURE_SKIP_VERIFY

    if PREFECT_API_TLS_INSECURE_SKIP_VERIFY.value():
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=PREFECT_API_SSL_CERT_FILE.value() or None)  # else the system's


def _answered(status: int) -> str:
    if status >= 500:
        return (f"Prefect API answered {status}: the Prefect server or its database (Postgres) is failing; "
                "dispatch is retried")
    return f"Prefect API answered {status}; dispatch is retried"
