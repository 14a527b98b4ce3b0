"""OpenID Connect sign-in for production (Authlib's Starlette client: discovery, PKCE, state, nonce, ID
token signature and claims checked by the library).

The provider says who the user is; its groups claim says what they may do (``flows/web/config.py``):
the instructors' group makes an instructor, ``<prefix><publisher>`` a publisher of ``inbox/<publisher>/``;
anything else (no group, two publishers) is refused. The account is recorded (no password) so that the
audit trail names it and an administrator can disable it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from flows.web.auth import INSTRUCTOR, PUBLISHER, User, valid_publisher
from flows.web.config import Oidc

_CLIENT = "proofcheck"
log = logging.getLogger(__name__)


class OidcRefused(Exception):
    """The provider's answer gives no role in the workbench."""


def role_of(claims: Mapping[str, Any], config: Oidc) -> User:
    """The workbench user the ID token's claims describe (``OidcRefused`` when none)."""
    subject = str(claims.get("sub") or "")
    if not subject:
        raise OidcRefused("no subject")
    raw = claims.get(config.roles_claim) or []
    groups: Iterable[Any] = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    names = {str(g) for g in groups}
    display = str(claims.get("name") or claims.get("preferred_username") or claims.get("email") or subject)[:256]
    username = f"oidc:{subject}"[:128]
    if config.instructor_group in names:
        return User(username, INSTRUCTOR, display)
    publishers = sorted(g[len(config.publisher_prefix):] for g in names if g.startswith(config.publisher_prefix))
    if len(publishers) == 1 and valid_publisher(publishers[0]):
        return User(username, PUBLISHER, display, publishers[0])
    raise OidcRefused("no role" if not publishers else "several publishers")


def client(config: Oidc) -> Any:
    from authlib.integrations.starlette_client import OAuth

    oauth = OAuth()
    oauth.register(
        name=_CLIENT,
        server_metadata_url=f"{config.issuer}/.well-known/openid-configuration",
        client_id=config.client_id,
        client_secret=config.client_secret,
        client_kwargs={"scope": "openid profile email", "code_challenge_method": "S256"},
    )
    return oauth.create_client(_CLIENT)


async def start(request: Request) -> Response:
    from flows.web.common import refused, safe_next, workbench

    bench = workbench(request)
    if bench.config.oidc is None:
        return refused(request, "La connexion OpenID Connect n'est pas configurée.", "OpenID Connect is not set up.",
                       404)
    import httpx

    request.session["suite"] = safe_next(request.query_params.get("suite"))
    redirect = bench.config.oidc.redirect_url or str(request.url_for("oidc_callback"))
    try:
        answer: Response = await request.app.state.oidc_client.authorize_redirect(request, redirect)
    except (httpx.HTTPError, ValueError, KeyError):  # discovery unreachable or malformed
        return refused(request, "Le fournisseur d'identité ne répond pas : réessayez plus tard.",
                       "The identity provider does not answer.", 503)
    return answer


async def callback(request: Request) -> Response:
    from flows.web.common import refused, safe_next, workbench
    from flows.web.signin import open_session

    bench = workbench(request)
    if bench.config.oidc is None:
        return refused(request, "La connexion OpenID Connect n'est pas configurée.", "OpenID Connect is not set up.",
                       404)
    try:
        token = await request.app.state.oidc_client.authorize_access_token(request)
        user = role_of(token.get("userinfo") or {}, bench.config.oidc)
    except OidcRefused:
        return refused(request, "Votre compte n'a pas de rôle dans le poste de travail (instructeur ou éditeur).",
                       "Your account has no role in the workbench.", 403)
    except Exception as exc:  # state, code, token endpoint, ID token signature or claims: any doubt, no session
        log.warning("OpenID Connect sign-in refused: %s", type(exc).__name__)
        return refused(request, "Le fournisseur d'identité n'a pas confirmé la connexion.",
                       "The identity provider did not confirm the sign-in.", 401)
    if bench.auth.disabled(user.username):
        return refused(request, "Ce compte a été désactivé.", "This account was disabled.", 403)
    bench.auth.add_account(user.username, user.role, password=None, display_name=user.display_name,
                           publisher=user.publisher, source="oidc")
    return open_session(request, user, safe_next(request.session.pop("suite", None)))


__all__ = ["OidcRefused", "User", "callback", "client", "role_of", "start"]
