"""OpenID Connect sign-in: roles from the provider's groups, the redirect (PKCE, state, nonce), a forged return."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("authlib")

from conftest_flows import mocked_store
from test_web_support import FAST_HASHER, World

from flows.index import VerdictIndex
from flows.web.app import create_app
from flows.web.auth import INSTRUCTOR, PUBLISHER
from flows.web.config import Oidc, WebConfig, WebConfigError
from flows.web.oidc import OidcRefused, role_of

CONFIG = Oidc(issuer="https://idp.example/realms/ans", client_id="proofcheck", client_secret="s3cret")


@pytest.mark.parametrize(("claims", "role", "publisher"), [
    ({"sub": "u1", "groups": ["proofcheck-instructeurs", "autre"]}, INSTRUCTOR, None),
    ({"sub": "u2", "groups": ["proofcheck-editeur-acme"]}, PUBLISHER, "acme"),
    ({"sub": "u3", "groups": "proofcheck-editeur-globex"}, PUBLISHER, "globex"),
])
def test_the_groups_claim_gives_the_role(claims: dict[str, object], role: str, publisher: str | None) -> None:
    user = role_of(claims, CONFIG)
    assert (user.role, user.publisher, user.username) == (role, publisher, f"oidc:{claims['sub']}")


@pytest.mark.parametrize("claims", [
    {"sub": "u1", "groups": []},
    {"sub": "u1"},
    {"sub": "u1", "groups": ["proofcheck-editeur-acme", "proofcheck-editeur-globex"]},
    {"sub": "u1", "groups": ["proofcheck-editeur-a/b"]},
    {"sub": "u1", "groups": ["proofcheck-editeur-"]},
    {"groups": ["proofcheck-instructeurs"]},
], ids=["no-group", "no-claim", "two-publishers", "slash", "empty-publisher", "no-subject"])
def test_no_role_or_an_ambiguous_one_is_refused(claims: dict[str, object]) -> None:
    with pytest.raises(OidcRefused):
        role_of(claims, CONFIG)


def test_settings_refuse_oidc_without_its_client_and_no_sign_in_at_all() -> None:
    with pytest.raises(WebConfigError):
        WebConfig.from_env({"PROOFCHECK_OIDC_ISSUER": "https://idp.example"})
    with pytest.raises(WebConfigError):
        WebConfig.from_env({"PROOFCHECK_WEB_LOCAL_ACCOUNTS": "false"})
    with pytest.raises(WebConfigError):
        WebConfig.from_env({"PROOFCHECK_WEB_SECRET": "short"})


@pytest.fixture
def oidc_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with mocked_store(monkeypatch, "proofcheck-web-oidc") as store:
        index = VerdictIndex(f"sqlite:///{tmp_path / 'i.sqlite3'}")
        config = WebConfig.from_env({
            "PROOFCHECK_WEB_SECRET": "o" * 40, "PROOFCHECK_OIDC_ISSUER": CONFIG.issuer,
            "PROOFCHECK_OIDC_CLIENT_ID": CONFIG.client_id, "PROOFCHECK_OIDC_CLIENT_SECRET": CONFIG.client_secret,
            "PROOFCHECK_WEB_LOCAL_ACCOUNTS": "false",
        })
        app = create_app(store, index, config, hasher=FAST_HASHER)
        # The provider's discovery document, as if fetched (no network in tests).
        app.state.oidc_client.server_metadata.update({
            "issuer": CONFIG.issuer, "authorization_endpoint": f"{CONFIG.issuer}/auth",
            "token_endpoint": f"{CONFIG.issuer}/token", "jwks_uri": f"{CONFIG.issuer}/certs",
            "_loaded_at": time.time(),
        })
        yield World(store, index, app, tmp_path)
        index.close()


def test_sign_in_goes_to_the_provider_with_pkce_state_and_nonce(oidc_app: World) -> None:
    client = oidc_app.client()
    page = client.get("/connexion").text
    assert "OpenID Connect" in page and 'name="mot_de_passe"' not in page  # local accounts off
    answer = client.get("/oidc/connexion?suite=/paquets")
    assert answer.status_code in (302, 303, 307)
    target = urllib.parse.urlsplit(answer.headers["location"])
    params = dict(urllib.parse.parse_qsl(target.query))
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{CONFIG.issuer}/auth"
    assert params["response_type"] == "code" and params["client_id"] == "proofcheck"
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) >= 43
    assert params["state"] and params["nonce"] and "openid" in params["scope"].split()
    assert params["redirect_uri"].endswith("/oidc/retour")
    # A return that does not carry the state we sent is refused, and opens no session.
    forged = client.get("/oidc/retour?code=abc&state=not-ours")
    assert forged.status_code == 401 and "proofcheck_session" not in forged.headers.get("set-cookie", "")
    assert client.get("/paquets").status_code == 303


def test_password_sign_in_is_refused_when_local_accounts_are_off(oidc_app: World) -> None:
    oidc_app.app.state.workbench.auth.add_account("alice", INSTRUCTOR, password="mot-de-passe-solide-42")
    client = oidc_app.client()
    answer = client.post("/connexion", data={"identifiant": "alice", "mot_de_passe": "mot-de-passe-solide-42"})
    assert answer.status_code == 303 and answer.headers["location"] == "/connexion"
    assert client.get("/paquets").status_code == 303
