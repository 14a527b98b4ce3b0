"""The workbench's settings, read once from the environment and validated at start.

- ``PROOFCHECK_WEB_SECRET``: key of the form tokens (HMAC), at least 32 characters; default: a random key
  per process (forms in flight fail after a restart).
- ``PROOFCHECK_WEB_SESSION_MINUTES``: a session ends this long after sign-in (480, a working day) ...
- ``PROOFCHECK_WEB_IDLE_MINUTES``: ... or after this long without a request (60).
- ``PROOFCHECK_WEB_SECURE_COOKIES``: ``true``: cookies only over HTTPS (behind a TLS proxy; production);
  ``false`` (default): plain HTTP too (local, demo).
- ``PROOFCHECK_WEB_LOCAL_ACCOUNTS``: ``false``: no password sign-in, OpenID Connect only (default true).
- ``PROOFCHECK_OIDC_ISSUER``: the OpenID provider (its ``/.well-known/openid-configuration``); unset: no OIDC.
- ``PROOFCHECK_OIDC_CLIENT_ID`` / ``PROOFCHECK_OIDC_CLIENT_SECRET``: this client at the provider.
- ``PROOFCHECK_OIDC_REDIRECT_URL``: the workbench's ``/oidc/retour`` URL as the provider knows it.
- ``PROOFCHECK_OIDC_ROLES_CLAIM``: the claim listing the user's groups (``groups``).
- ``PROOFCHECK_OIDC_INSTRUCTOR_GROUP``: the group that makes an instructor (``proofcheck-instructeurs``).
- ``PROOFCHECK_OIDC_PUBLISHER_PREFIX``: a group ``<prefix><publisher>`` makes a publisher of
  ``inbox/<publisher>/`` (``proofcheck-editeur-``).

The verdict index and the bucket are the pipeline's (``flows/settings.py``): the same database, the
same stored reports.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)


class WebConfigError(ValueError):
    """A setting that would make the workbench unsafe or unusable."""


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "oui"):
        return True
    if raw in ("0", "false", "no", "non"):
        return False
    raise WebConfigError(f"{name} must be true or false")


def _minutes(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    try:
        value = int(raw) if raw else default
    except ValueError:
        raise WebConfigError(f"{name} must be a number of minutes") from None
    if not 1 <= value <= 7 * 24 * 60:
        raise WebConfigError(f"{name} must be between 1 minute and 7 days")
    return value


@dataclass(frozen=True)
class Oidc:
    issuer: str
    client_id: str
    client_secret: str
    redirect_url: str | None = None
    roles_claim: str = "groups"
    instructor_group: str = "proofcheck-instructeurs"
    publisher_prefix: str = "proofcheck-editeur-"


@dataclass(frozen=True)
class WebConfig:
    secret: bytes
    session_seconds: int = 8 * 3600
    idle_seconds: int = 3600
    secure_cookies: bool = False
    local_accounts: bool = True
    oidc: Oidc | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WebConfig:
        env = os.environ if env is None else env
        raw_secret = env.get("PROOFCHECK_WEB_SECRET") or ""
        if raw_secret and len(raw_secret) < 32:
            raise WebConfigError("PROOFCHECK_WEB_SECRET must be at least 32 characters")
        if not raw_secret:
            log.warning("PROOFCHECK_WEB_SECRET is not set: a random key for this process only")
        secret = raw_secret.encode() if raw_secret else secrets.token_bytes(32)
        oidc = None
        if env.get("PROOFCHECK_OIDC_ISSUER"):
            client_id = env.get("PROOFCHECK_OIDC_CLIENT_ID") or ""
            client_secret = env.get("PROOFCHECK_OIDC_CLIENT_SECRET") or ""
            if not client_id or not client_secret:
                raise WebConfigError("PROOFCHECK_OIDC_ISSUER needs PROOFCHECK_OIDC_CLIENT_ID and _CLIENT_SECRET")
            oidc = Oidc(
                issuer=env["PROOFCHECK_OIDC_ISSUER"].rstrip("/"),
                client_id=client_id,
                client_secret=client_secret,
                redirect_url=env.get("PROOFCHECK_OIDC_REDIRECT_URL") or None,
                roles_claim=env.get("PROOFCHECK_OIDC_ROLES_CLAIM") or "groups",
                instructor_group=env.get("PROOFCHECK_OIDC_INSTRUCTOR_GROUP") or "proofcheck-instructeurs",
                publisher_prefix=env.get("PROOFCHECK_OIDC_PUBLISHER_PREFIX") or "proofcheck-editeur-",
            )
        local = _flag(env, "PROOFCHECK_WEB_LOCAL_ACCOUNTS", True)
        if not local and oidc is None:
            raise WebConfigError("with PROOFCHECK_WEB_LOCAL_ACCOUNTS=false, set PROOFCHECK_OIDC_ISSUER")
        return cls(
            secret=secret,
            session_seconds=_minutes(env, "PROOFCHECK_WEB_SESSION_MINUTES", 480) * 60,
            idle_seconds=_minutes(env, "PROOFCHECK_WEB_IDLE_MINUTES", 60) * 60,
            secure_cookies=_flag(env, "PROOFCHECK_WEB_SECURE_COOKIES", False),
            local_accounts=local,
            oidc=oidc,
        )


__all__ = ["Oidc", "WebConfig", "WebConfigError"]
