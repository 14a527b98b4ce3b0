"""The workbench's routes, roles and bad input, through Starlette's TestClient over a real bucket (moto) and index."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")

import sqlalchemy as sa
from test_web_support import PASSWORD, Proof, World, hidden, nir, sign_in, token_of, world

from flows.decisions import DecisionStore
from flows.web.auth import sessions
from validators.verdict_io import read_verdict

ACME = "inbox/acme/lgc-acme.zip"
GLOBEX = "inbox/globex/lgc-globex.zip"
CAPTURE = "INS.41.2.2/capture.txt"


def nir_proofs(text: str = "capture v1") -> list[Proof]:
    return [Proof("INS.41.2.2", {CAPTURE: text}, {CAPTURE: [nir()]}), Proof("DOC.3.1.2", {"DOC.3.1.2/cr.txt": "ok"})]


def populated(w: World) -> World:
    w.add_account("alice")
    w.add_account("bob")
    w.add_account("acme-user", "publisher", "acme")
    w.submit("acme", "lgc-acme.zip", nir_proofs())
    w.submit("globex", "lgc-globex.zip", [Proof("INS.41.2.2", {"INS.41.2.2/ecran.txt": "écran"})])
    w.submit("globex", "suspect.zip", [Proof("DOC.3.1.2", {"DOC.3.1.2/x.txt": "x"})], quarantine=True)
    w.submit("acme", "lgc-incomplet.zip", [Proof("INS.1.1.1", {"INS.1.1.1/a.txt": "a"}, not_run=True)])
    w.submit("acme", "essai.zip", nir_proofs(), area="dryrun")
    return w


@pytest.fixture
def bench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """A world of its own, for tests that record decisions or touch sessions."""
    with world(tmp_path, monkeypatch) as w:
        yield populated(w)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One world for the tests that only read."""
    with pytest.MonkeyPatch.context() as patch, world(tmp_path_factory.mktemp("web"), patch) as w:
        yield populated(w)


def same_page(one: str, other: str) -> bool:
    """Equal but for the form tokens (one-time: every page has its own)."""
    return re.sub(r'name="jeton" value="[^"]+"', "", one) == re.sub(r'name="jeton" value="[^"]+"', "", other)


def package_names(page: str) -> list[str]:
    return re.findall(r'<td><a href="/paquet\?cle=[^"]+">([^<]+)</a></td>', page)


GET_ROUTES = ["/", "/paquets", "/paquet?cle=" + ACME, "/paquet/versions?cle=" + ACME, "/preuve?id=INS.41.2.2",
              "/recherche?q=pii", "/revalidations", "/journal?cle=" + ACME, "/mes-essais", "/telecharger?cle=" + ACME,
              "/export?verdict=x", "/rapport?cle=x", "/decider/constat?verdict=x&empreinte=y",
              "/decider/preuve?verdict=x&preuve=y", "/paquet/diff?cle=x&de=y&a=z"]


@pytest.mark.parametrize("path", GET_ROUTES)
def test_every_page_asks_to_sign_in_first(shared: World, path: str) -> None:
    answer = shared.client().get(path)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/connexion?suite=")


def test_health_answers_without_a_session_and_headers_forbid_scripts(shared: World) -> None:
    answer = shared.client().get("/sante")
    assert answer.status_code == 200 and answer.text == "ok\n"
    page = shared.client("alice").get("/paquets")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY" and page.headers["referrer-policy"] == "no-referrer"
    assert "<script" not in page.text and 'lang="fr"' in page.text


def test_an_instructor_sees_every_submission_never_a_dry_run_and_filters_them(shared: World) -> None:
    client = shared.client("alice")
    assert sorted(package_names(client.get("/paquets").text)) == [
        "lgc-acme.zip", "lgc-globex.zip", "lgc-incomplet.zip", "suspect.zip"]
    # suspect.zip is quarantined: an ssi.* error, so it fails too
    assert sorted(package_names(client.get("/paquets?statut=fail").text)) == ["lgc-acme.zip", "suspect.zip"]
    assert sorted(package_names(client.get("/paquets?editeur=globex").text)) == ["lgc-globex.zip", "suspect.zip"]
    assert package_names(client.get("/paquets?quarantaine=oui").text) == ["suspect.zip"]
    assert package_names(client.get("/paquets?incomplet=oui").text) == ["lgc-incomplet.zip"]
    assert package_names(client.get("/paquets?nom=GLOBEX").text) == ["lgc-globex.zip"]
    assert package_names(client.get("/paquets?tri=paquet&ordre=asc").text) == [
        "lgc-acme.zip", "lgc-globex.zip", "lgc-incomplet.zip", "suspect.zip"]
    assert package_names(client.get("/paquets?depuis=2999-01-01").text) == []
    assert package_names(client.get("/paquets?regle=pii.nir").text) == ["lgc-acme.zip"]  # which still have a NIR?
    assert package_names(client.get("/paquets?regle=pii.n%25").text) == []  # an exact rule id, no pattern
    # Unknown values are ignored, never an error.
    assert client.get("/paquets?statut=%27;drop&tri=x;y&page=-4&quarantaine=peut-etre").status_code == 200


def test_search_finds_proof_ids_file_names_and_rules(shared: World) -> None:
    client = shared.client("alice")
    page = client.get("/recherche?q=pii.nir").text
    assert "lgc-acme.zip" in page and "lgc-globex.zip" not in page and "1 résultat" in page
    assert "lgc-globex.zip" in client.get("/recherche?q=ECRAN").text
    page = client.get("/recherche?q=ins.41.2").text
    assert "lgc-acme.zip" in page and "lgc-globex.zip" in page


@pytest.mark.parametrize("text", ["%", "_", "\\", "' OR '1'='1", "\"; DROP TABLE verdicts; --", "%' --"])
def test_sql_metacharacters_in_a_search_match_only_themselves(shared: World, text: str) -> None:
    client = shared.client("alice")
    answer = client.get("/recherche", params={"q": text})
    assert answer.status_code == 200 and "0 résultat" in answer.text
    assert len(package_names(client.get("/paquets").text)) == 4  # the tables are still there


def test_html_in_a_search_is_escaped(shared: World) -> None:
    answer = shared.client("alice").get("/recherche", params={"q": '<script>alert("x")</script><img src=x>'})
    assert answer.status_code == 200 and "<script>alert" not in answer.text and "<img src=x>" not in answer.text
    assert "&lt;script&gt;alert" in answer.text


def test_a_proof_across_every_package(shared: World) -> None:
    page = shared.client("alice").get("/preuve?id=ins.41.2.2").text
    assert "2 paquet(s)" in page and "lgc-acme.zip" in page and "lgc-globex.zip" in page
    assert "pii.nir (error)" in page and "Non conforme" in page and "Conforme" in page


def test_the_package_page_reads_the_stored_verdict_with_masked_evidence_only(shared: World) -> None:
    page = shared.client("alice").get("/paquet", params={"cle": ACME}).text
    assert "INS.41.2.2" in page and "pii.nir" in page and "1 ** ** ** *** *** 96" in page
    assert "Sans décision" in page and "Télécharger le paquet" in page  # checked in full: fail is served
    assert "capture v1" not in page  # file content never appears


def test_quarantined_and_incomplete_packages_are_never_served_but_reports_are(shared: World) -> None:
    client = shared.client("alice")
    for key in ("inbox/globex/suspect.zip", "inbox/acme/lgc-incomplet.zip"):
        refused = client.get("/telecharger", params={"cle": key})
        assert refused.status_code == 403 and "location" not in refused.headers
        page = client.get("/paquet", params={"cle": key}).text
        report = re.search(r'href="(/rapport\?cle=[^"]+)"', page)
        assert report is not None
        answer = client.get(report.group(1).replace("&amp;", "&"))
        assert answer.status_code == 200 and "sandbox" in answer.headers["content-security-policy"]
    assert "QUARANTAINE" in client.get("/paquet", params={"cle": "inbox/globex/suspect.zip"}).text
    page = client.get("/paquet", params={"cle": "inbox/acme/lgc-incomplet.zip"}).text
    assert "Pas encore vérifié entièrement" in page


def test_a_package_checked_in_full_is_handed_out_by_a_presigned_link(shared: World) -> None:
    answer = shared.client("alice").get("/telecharger", params={"cle": GLOBEX})
    assert answer.status_code == 303
    assert "lgc-globex.zip" in answer.headers["location"] and "Signature" in answer.headers["location"]


# --- publishers ----------------------------------------------------------------------------------------------


def test_a_publisher_sees_only_its_own_packages_and_dry_runs(shared: World) -> None:
    client = shared.client("acme-user")
    assert sorted(package_names(client.get("/paquets").text)) == ["lgc-acme.zip", "lgc-incomplet.zip"]
    assert "lgc-globex" not in client.get("/recherche?q=ins").text
    assert "lgc-globex" not in client.get("/preuve?id=INS.41.2.2").text
    assert "globex" not in client.get("/paquets").text  # not even in the filters' choices
    dry = client.get("/mes-essais").text
    assert "essai.zip" in dry
    report = re.search(r'href="(/rapport\?cle=[^"]+)"', dry)
    assert report is not None and client.get(report.group(1).replace("&amp;", "&")).status_code == 200
    page = client.get("/paquet", params={"cle": ACME}).text
    assert "pii.nir" in page and "Décider" not in page and "Sans décision" not in page  # read only


def test_a_publisher_guessing_another_publishers_urls_learns_nothing(shared: World) -> None:
    client = shared.client("acme-user")
    other = shared.index.history(GLOBEX)[0]
    guesses = {
        "/paquet": {"cle": GLOBEX},
        "/paquet/versions": {"cle": GLOBEX},
        "/rapport": {"cle": other["html_key"]},
        "/paquet/diff": {"cle": GLOBEX, "de": other["json_key"], "a": other["json_key"]},
        "/telecharger": {"cle": GLOBEX},
        "/export": {"verdict": other["json_key"]},
        "/journal": {"cle": GLOBEX},
        "/decider/constat": {"verdict": other["json_key"], "empreinte": "x"},
    }
    nothing = client.get("/paquet", params={"cle": "inbox/globex/does-not-exist.zip"})
    for path, params in guesses.items():
        answer = client.get(path, params=params)
        assert answer.status_code == 404, path
        assert same_page(answer.text, nothing.text), path  # the page of a package that does not exist
    assert client.get("/rapport", params={"cle": "reports/dryrun/globex/x.zip/v/rs.html"}).status_code == 404
    assert client.get("/revalidations").status_code == 404


def test_a_publisher_cannot_decide(shared: World) -> None:
    client = shared.client("acme-user")
    page = client.get("/paquets").text
    answer = client.post("/decider/constat", data={"jeton": token_of(page, "/deconnexion"), "verdict": "x"})
    assert answer.status_code == 404
    assert DecisionStore(shared.index.engine).all() == []


# --- deciding ------------------------------------------------------------------------------------------------


def finding_form(client: Any, key: str = ACME) -> str:
    page = client.get("/paquet", params={"cle": key}).text
    link = re.search(r'href="(/decider/constat\?[^"]+)"', page)
    assert link is not None
    answer = client.get(link.group(1).replace("&amp;", "&"))
    assert answer.status_code == 200
    return str(answer.text)


def post_finding(client: Any, form: str, comment: str = "Identité fictive de test de l'ANS", **extra: Any) -> Any:
    data = {"jeton": token_of(form, "/decider/constat"), "verdict": hidden(form, "verdict"),
            "empreinte": hidden(form, "empreinte"), "attendu": hidden(form, "attendu"), "decision": "dismiss",
            "motif": "false_positive", "commentaire": comment, **extra}
    return client.post("/decider/constat", data=data)


def test_an_instructor_dismisses_a_finding_and_sees_it_beside_the_machine_verdict(bench: World) -> None:
    client = bench.client("alice")
    answer = post_finding(client, finding_form(client))
    assert answer.status_code == 303 and answer.headers["location"].startswith("/paquet?cle=")
    page = client.get("/paquet", params={"cle": ACME}).text
    assert "Décidé sur ce verdict" in page and "Faux positif" in page
    [decision] = DecisionStore(bench.index.engine).all()
    assert (decision.author, decision.decision, decision.reasons) == ("alice", "dismiss", ("false_positive",))
    journal = client.get("/journal", params={"cle": ACME}).text
    assert "Identité fictive de test de l&#39;ANS" in journal
    export = client.get("/export", params={"verdict": decision.json_key, "format": "json"}).json()
    assert export["status"] == "fail"  # the machine's verdict, unchanged
    [finding] = [f for f in export["instruction"]["findings"] if f["rule"] == "pii.nir"]
    assert finding["state"] == "decided" and finding["decision"]["comment"].startswith("Identité fictive")
    html = client.get("/export", params={"verdict": decision.json_key, "format": "html"}).text
    assert "Non conforme" in html and "Faux positif" in html


def test_a_proof_is_rejected_with_reasons_from_the_list(bench: World) -> None:
    client = bench.client("alice")
    page = client.get("/paquet", params={"cle": ACME}).text
    link = re.search(r'href="(/decider/preuve\?[^"]+preuve=INS.41.2.2)"', page)
    assert link is not None
    form = client.get(link.group(1).replace("&amp;", "&")).text
    data = {"jeton": token_of(form, "/decider/preuve"), "verdict": hidden(form, "verdict"), "preuve": "INS.41.2.2",
            "attendu": "", "decision": "rejected", "motif": ["real-data", "off-topic"], "commentaire": ""}
    assert client.post("/decider/preuve", data=data).status_code == 303
    [decision] = DecisionStore(bench.index.engine).all()
    assert decision.reasons == ("real-data", "off-topic") and decision.digest
    data["jeton"] = token_of(client.get(link.group(1).replace("&amp;", "&")).text, "/decider/preuve")
    data.update(motif=["not-a-reason"], attendu=str(decision.seq))
    refused = client.post("/decider/preuve", data=data)
    assert refused.status_code == 400 and "motif inconnu" in refused.text


def test_an_incomplete_decision_is_refused_and_the_text_kept(bench: World) -> None:
    client = bench.client("alice")
    answer = post_finding(client, finding_form(client), comment="   ")
    assert answer.status_code == 400 and "le commentaire est obligatoire" in answer.text
    form = finding_form(client)
    answer = post_finding(client, form, comment="gardé tel quel", motif="")
    assert answer.status_code == 400 and "gardé tel quel" in answer.text
    assert DecisionStore(bench.index.engine).all() == []


def test_forged_missing_foreign_and_replayed_form_posts_are_refused(bench: World) -> None:
    alice, bob = bench.client("alice"), bench.client("bob")
    form = finding_form(alice)
    token = token_of(form, "/decider/constat")
    nonce, issued, mac = token.split(".")
    forgeries = ("", "x", f"{nonce}.{issued}.{'0' * 64}", f"{'a' * 32}.{issued}.{mac}",
                 f"{nonce}.{int(issued) + 1}.{mac}")
    for forged in forgeries:
        answer = post_finding(alice, form, jeton=forged)
        assert answer.status_code == 403 and "pas été émis" in answer.text
    assert post_finding(bob, form).status_code == 403  # another session's token
    signin = token_of(alice.get("/paquets").text, "/deconnexion")
    assert post_finding(alice, form, jeton=signin).status_code == 403  # a token for another form
    assert post_finding(alice, form).status_code == 303
    replay = post_finding(alice, form)  # the same post again, token included
    assert replay.status_code == 403 and "déjà été envoyé" in replay.text
    assert len(DecisionStore(bench.index.engine).all()) == 1


def test_two_instructors_deciding_at_once_get_a_conflict_and_lose_nothing(bench: World) -> None:
    alice, bob = bench.client("alice"), bench.client("bob")
    alice_form, bob_form = finding_form(alice), finding_form(bob)
    assert post_finding(alice, alice_form, comment="faux positif : identité de démonstration").status_code == 303
    conflict = post_finding(bob, bob_form, comment="à confirmer, le NIR semble réel", decision="confirm", motif="")
    assert conflict.status_code == 409
    assert "Un autre instructeur" in conflict.text and "à confirmer, le NIR semble réel" in conflict.text
    assert "faux positif : identité de démonstration" in conflict.text  # alice's decision, shown to bob
    assert len(DecisionStore(bench.index.engine).all()) == 1
    # Bob read it and still confirms: his decision supersedes alice's (both kept).
    again = post_finding(bob, conflict.text, comment="confirmé après relecture", decision="confirm", motif="")
    assert again.status_code == 303
    first, second = DecisionStore(bench.index.engine).all()
    assert (second.author, second.supersedes) == ("bob", first.seq)


def test_a_decision_on_a_verdict_that_no_longer_exists_or_is_no_longer_current(bench: World) -> None:
    client = bench.client("alice")
    form = finding_form(client)
    gone = post_finding(client, form, verdict="reports/inbox/acme/lgc-acme.zip/v-x/rs-0.json",
                        comment="mon analyse détaillée")
    assert gone.status_code == 410 and "existe plus" in gone.text and "mon analyse détaillée" in gone.text
    form = finding_form(client)
    bench.submit("acme", "lgc-acme.zip", nir_proofs("capture v2"))  # a new version arrives meanwhile
    stale = post_finding(client, form, comment="sur l'ancien verdict")
    assert stale.status_code == 409 and "plus récent" in stale.text and "sur l&#39;ancien verdict" in stale.text
    assert DecisionStore(bench.index.engine).all() == []


def test_a_decision_carries_over_to_the_next_verdict_or_asks_for_review(bench: World) -> None:
    client = bench.client("alice")
    assert post_finding(client, finding_form(client)).status_code == 303
    bench.submit("acme", "lgc-acme.zip", nir_proofs(), ruleset="rs-2")  # same content
    page = client.get("/paquet", params={"cle": ACME}).text
    assert "Décision reportée" in page and "Faux positif" in page
    bench.submit("acme", "lgc-acme.zip", nir_proofs("capture modifiée"), ruleset="rs-2")
    page = client.get("/paquet", params={"cle": ACME}).text
    counts = re.search(r'id="counts-findings"><th scope="row">Constats</th><td class="num">(\d+)<', page)
    assert "À revoir" in page and counts is not None and counts.group(1) == "1"
    versions = client.get("/paquet/versions", params={"cle": ACME}).text
    assert versions.count("différences avec le précédent") == 2
    diff_link = re.findall(r'href="(/paquet/diff\?[^"]+)"', versions)[-1].replace("&amp;", "&")
    diff = client.get(diff_link)
    assert diff.status_code == 200 and "Côte à côte" in diff.text


# --- sessions ------------------------------------------------------------------------------------------------


def test_wrong_passwords_are_refused_then_the_account_is_locked_for_a_while(bench: World) -> None:
    client = bench.client()
    for _ in range(5):
        page = client.get("/connexion").text
        answer = client.post("/connexion", data={"jeton": token_of(page, "/connexion"), "identifiant": "alice",
                                                 "mot_de_passe": "mauvais"})
        assert answer.status_code == 401
    page = client.get("/connexion").text
    locked = client.post("/connexion", data={"jeton": token_of(page, "/connexion"), "identifiant": "alice",
                                             "mot_de_passe": PASSWORD})
    assert locked.status_code == 401
    sign_in(bench.client(), "bob")  # others are not affected


def test_an_oversized_post_is_refused_before_it_is_read(shared: World) -> None:
    answer = shared.client().post("/connexion", content=b"a=" + b"x" * 300_000,
                                  headers={"content-type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 413


def test_a_sign_in_post_without_its_token_is_refused(bench: World) -> None:
    answer = bench.client().post("/connexion", data={"identifiant": "alice", "mot_de_passe": PASSWORD})
    assert answer.status_code == 403


def test_sessions_end_at_sign_out_after_idleness_and_after_their_lifetime(bench: World) -> None:
    client = bench.client("alice")
    cookie = client.cookies.get("proofcheck_session")
    assert client.get("/paquets").status_code == 200
    with bench.index.engine.begin() as conn:
        conn.execute(sessions.update().values(last_seen=time.time() - 2 * 3600))
    assert client.get("/paquets").status_code == 303  # idle for two hours
    client = bench.client("alice")
    with bench.index.engine.begin() as conn:
        conn.execute(sessions.update().values(created_at=time.time() - 9 * 3600, last_seen=time.time()))
    assert client.get("/paquets").status_code == 303  # signed in nine hours ago
    client = bench.client("alice")
    page = client.get("/paquets").text
    old = client.cookies.get("proofcheck_session")
    assert client.post("/deconnexion", data={"jeton": token_of(page, "/deconnexion")}).status_code == 303
    stranger = bench.client()
    stranger.cookies.set("proofcheck_session", old or "")
    assert stranger.get("/paquets").status_code == 303  # the old cookie is worth nothing now
    assert cookie != old
    with bench.index.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(sessions)).scalar() == 0


def test_a_disabled_account_loses_its_session_at_once(bench: World) -> None:
    client = bench.client("alice")
    auth = bench.app.state.workbench.auth
    auth.disable("alice")
    assert client.get("/paquets").status_code == 303
    auth.add_account("alice", "instructor", password=PASSWORD)  # an update (a provider's sign-in) keeps it off
    assert auth.disabled("alice") and auth.check_password("alice", PASSWORD) is None


def test_the_next_page_after_sign_in_stays_on_this_site(shared: World) -> None:
    client = shared.client()
    page = client.get("/connexion?suite=//evil.example/x").text
    answer = client.post("/connexion", data={"jeton": token_of(page, "/connexion"), "identifiant": "alice",
                                             "mot_de_passe": PASSWORD, "suite": "https://evil.example/"})
    assert answer.status_code == 303 and answer.headers["location"] == "/paquets"


def test_the_change_reports_of_revalidations_are_listed_and_served(bench: World) -> None:
    json_key, doc = bench.submit("globex", "lgc-globex.zip", [Proof("INS.41.2.2", {"INS.41.2.2/ecran.txt": "écran"})],
                                 ruleset="rs-2")
    report_key = "reports/changes/rs-2/run-1.html"
    bench.store.put_bytes(report_key, b"<!doctype html><title>changes</title><h1>Re-validation</h1>", "text/html")
    doc["revalidation"] = {"run": "run-1", "mode": "rerun", "report": report_key,
                           "previous": {"json_key": "x", "status": "fail", "ruleset": "rs-1"}}
    bench.index.record_revalidation(read_verdict(doc), json_key)
    client = bench.client("alice")
    page = client.get("/revalidations").text
    assert "run-1" in page and "rs-1" in page
    assert client.get("/rapport", params={"cle": report_key}).status_code == 200
    assert client.get("/rapport", params={"cle": "reports/changes/rs-2/other.html"}).status_code == 404
    assert client.get("/rapport", params={"cle": "reports/../inbox/acme/lgc-acme.zip"}).status_code == 404
