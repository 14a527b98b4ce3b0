"""The workbench's settings: declared like the pipeline's, checked at start, shown by ``proofcheck config``.

``WebSettings`` is a settings class of ``validators.settingslib`` (section ``[web]`` of the settings file,
one variable per setting): every ``proofcheck`` command checks it first and
stops with one line naming the variable; ``docs/configuration.md`` is generated from it. ``WebConfig`` is
what the application uses, built from it (the form-token key as bytes, durations in seconds, OIDC
grouped). The verdict index and the bucket are the pipeline's (``flows/settings.py``).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from validators.settingslib import SettingsBase, SettingsError, setting

log = logging.getLogger(__name__)

WEEK_MINUTES = 7 * 24 * 60


class WebConfigError(ValueError):
    """A setting that would make the workbench unsafe or unusable."""


def _secret_length(value: Any) -> str | None:
    return "must be at least 32 characters" if value and len(value) < 32 else None


def _minutes(value: Any) -> str | None:
    return None if 1 <= value <= WEEK_MINUTES else "must be between 1 minute and 7 days (10080)"


def _http_url(value: Any) -> str | None:
    if value is None or value.startswith(("https://", "http://")):
        return None
    return "must be an http(s) URL"


@dataclass(frozen=True)
class WebSettings(SettingsBase):
    """Sign-in, sessions and cookies of ``proofcheck web``."""

    section_name: ClassVar[str] = "web"

    secret: str = setting(
        "", doc="key of the one-time form tokens (HMAC), 32+ characters", env="PROOFCHECK_WEB_SECRET",
        secret=True, checks=(_secret_length,), affects_results=False,
        default_doc="none: a random key per process (forms in flight fail after a restart)",
    )
    session_minutes: int = setting(
        480, doc="a workbench session ends this long after sign-in (a working day)",
        env="PROOFCHECK_WEB_SESSION_MINUTES", checks=(_minutes,), affects_results=False,
    )
    idle_minutes: int = setting(
        60, doc="... or after this long without a request", env="PROOFCHECK_WEB_IDLE_MINUTES",
        checks=(_minutes,), affects_results=False,
    )
    secure_cookies: bool = setting(
        False, doc="`true`: cookies only over HTTPS (behind the TLS proxy, production)",
        env="PROOFCHECK_WEB_SECURE_COOKIES", affects_results=False,
    )
    local_accounts: bool = setting(
        True, doc="`false`: no password sign-in, OpenID Connect only", env="PROOFCHECK_WEB_LOCAL_ACCOUNTS",
        affects_results=False,
    )
    oidc_issuer: str | None = setting(
        None, doc="the OpenID provider (its `/.well-known/openid-configuration`); none: no OpenID Connect",
        env="PROOFCHECK_OIDC_ISSUER", checks=(_http_url,), affects_results=False,
    )
    oidc_client_id: str = setting(
        "", doc="the workbench's client at the provider", env="PROOFCHECK_OIDC_CLIENT_ID", affects_results=False,
    )
    oidc_client_secret: str = setting(
        "", doc="its secret", env="PROOFCHECK_OIDC_CLIENT_SECRET", secret=True, affects_results=False,
    )
    oidc_redirect_url: str | None = setting(
        None, doc="the workbench's `/oidc/retour` URL as the provider knows it (else derived from the request)",
        env="PROOFCHECK_OIDC_REDIRECT_URL", checks=(_http_url,), affects_results=False,
    )
    oidc_roles_claim: str = setting(
        "groups", doc="the ID-token claim listing the user's groups", env="PROOFCHECK_OIDC_ROLES_CLAIM",
        affects_results=False,
    )
    oidc_instructor_group: str = setting(
        "proofcheck-instructeurs", doc="the group that makes an instructor",
        env="PROOFCHECK_OIDC_INSTRUCTOR_GROUP", affects_results=False,
    )
    oidc_publisher_prefix: str = setting(
        "proofcheck-editeur-", doc="a group `<prefix><publisher>` makes a publisher of `inbox/<publisher>/`",
        env="PROOFCHECK_OIDC_PUBLISHER_PREFIX", affects_results=False,
    )

    def check_together(self) -> list[str]:
        problems = []
        if self.oidc_issuer and not (self.oidc_client_id and self.oidc_client_secret):
            problems.append(f"{self.label_of('oidc_issuer')} is set: set PROOFCHECK_OIDC_CLIENT_ID and "
                            "PROOFCHECK_OIDC_CLIENT_SECRET too")
        if not self.local_accounts and not self.oidc_issuer:
            problems.append(f"{self.label_of('local_accounts')}=false leaves no way to sign in: "
                            "set PROOFCHECK_OIDC_ISSUER")
        return problems


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
    def from_settings(cls, settings: WebSettings) -> WebConfig:
        if not settings.secret:
            log.warning("PROOFCHECK_WEB_SECRET is not set: a random key for this process only")
        oidc = None
        if settings.oidc_issuer:
            oidc = Oidc(
                issuer=settings.oidc_issuer.rstrip("/"),
                client_id=settings.oidc_client_id,
                client_secret=settings.oidc_client_secret,
                redirect_url=settings.oidc_redirect_url,
                roles_claim=settings.oidc_roles_claim,
                instructor_group=settings.oidc_instructor_group,
                publisher_prefix=settings.oidc_publisher_prefix,
            )
        return cls(
            secret=settings.secret.encode() if settings.secret else secrets.token_bytes(32),
            session_seconds=settings.session_minutes * 60,
            idle_seconds=settings.idle_minutes * 60,
            secure_cookies=settings.secure_cookies,
            local_accounts=settings.local_accounts,
            oidc=oidc,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WebConfig:
        """From ``env`` (default: this process's) and the settings file; WebConfigError names the variable."""
        try:
            return cls.from_settings(WebSettings.load(env))
        except SettingsError as exc:
            raise WebConfigError(str(exc)) from None


__all__ = ["Oidc", "WebConfig", "WebConfigError", "WebSettings"]
