"""The workbench in a real Chromium (Debian's, driven by Playwright): a new instructor signs in, filters, searches,
decides, the package is re-validated by the real re-validation code, and the decision is carried; a publisher
is refused another publisher's package. Screenshots go to ``$PROOFCHECK_SCREENSHOTS`` (default: the test's
temporary folder) so that a person can look at what an instructor sees.

One browser, one test: a few seconds of CI. Skipped when Chromium or Playwright is absent.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("playwright")
pytest.importorskip("prefect")

import uvicorn
from playwright.sync_api import Page, expect, sync_playwright
from test_web_support import PASSWORD, Proof, World, nir, world

from flows import revalidate as revalidate_module
from flows.devharness import services
from flows.revalidate import Revalidation
from flows.settings import PipelineSettings
from validators import filetype

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(shutil.which(CHROMIUM) is None and not Path(CHROMIUM).exists(), reason="no Chromium"),
]
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions"]


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[World, str]]:
    with world(tmp_path, monkeypatch) as w:
        w.add_account("claire")
        w.add_account("acme-user", "publisher", "acme")
        proofs = [Proof("INS.41.2.2", {"INS.41.2.2/capture-ins.txt": "capture"},
                        {"INS.41.2.2/capture-ins.txt": [nir()]}),
                  Proof("DOC.3.1.2", {"DOC.3.1.2/lettre.txt": "lettre de suivi"})]
        w.submit("acme", "lgc-acme-v1.zip", proofs)
        w.submit("globex", "lgc-globex.zip", [Proof("INS.41.2.2", {"INS.41.2.2/ecran.txt": "écran"})])
        port = services.free_port()
        server = uvicorn.Server(uvicorn.Config(w.app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            yield w, f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(10)


def shot(page: Page, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def revalidate(w: World, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """The real re-validation run over the bucket and index, with the checks narrowed to filetype (no clamd)."""
    monkeypatch.setattr(revalidate_module, "VALIDATORS_FACTORY", lambda s: filetype.make_validators(s))
    settings = replace(PipelineSettings(), bucket=w.store.bucket, index_url=w.index.url, work_dir=tmp / "work")
    record: dict[str, object] = Revalidation(w.store, settings).run()
    return record


def test_a_new_instructor_finds_decides_and_sees_the_decision_carried(
    served: tuple[World, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w, base = served
    folder = Path(os.environ.get("PROOFCHECK_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    # The machine is shared (load 10-18 seen): generous waits, never a fixed sleep.
    expect.set_options(timeout=30_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900}, locale="fr-FR")
            page.set_default_timeout(30_000)
            page.goto(base + "/paquets")
            expect(page).to_have_url(f"{base}/connexion?suite=%2Fpaquets")
            page.get_by_label("Identifiant").fill("claire")
            page.get_by_label("Mot de passe").fill(PASSWORD)
            shot(page, folder, "01-connexion")
            page.get_by_role("button", name="Se connecter").click()
            expect(page.get_by_role("heading", level=1)).to_contain_text("Paquets de preuves")
            # Filter: only the packages that fail.
            page.get_by_label("Non conforme").check()
            page.get_by_role("button", name="Filtrer").click()
            expect(page.locator("#total")).to_contain_text("1 paquet(s)")
            expect(page.get_by_role("link", name="lgc-acme-v1.zip")).to_be_visible()
            expect(page.get_by_role("link", name="lgc-globex.zip")).to_have_count(0)
            shot(page, folder, "02-paquets-filtres")
            # Search a rule across packages.
            page.get_by_role("link", name="Recherche").click()
            page.get_by_label("Identifiant de preuve, nom de fichier ou règle").fill("pii.nir")
            page.get_by_role("button", name="Rechercher").click()
            expect(page.locator("#total")).to_contain_text("1 résultat(s)")
            shot(page, folder, "03-recherche")
            # Decide on the finding.
            page.get_by_role("link", name="lgc-acme-v1.zip").first.click()
            expect(page.locator("#counts-findings td")).to_have_text(["0", "1", "0", "0"])
            shot(page, folder, "04-paquet")
            page.get_by_role("link", name="Décider sur pii.nir").click()
            page.get_by_label("Constat écarté").check()
            page.get_by_label("Faux positif").check()
            page.get_by_label("Commentaire (obligatoire)").fill("Identité fictive publiée par l'ANS (cas de test).")
            shot(page, folder, "05-decision")
            page.get_by_role("button", name="Enregistrer la décision").click()
            expect(page.locator("#counts-findings td")).to_have_text(["0", "0", "0", "1"])
            # Re-validation under a new ruleset (the real code), then the decision is carried.
            record = revalidate(w, tmp_path, monkeypatch)
            assert [o["mode"] for o in record["packages"]] == ["carried", "carried"]  # type: ignore[index,union-attr]
            page.reload()
            expect(page.locator("#counts-findings td")).to_have_text(["0", "0", "1", "0"])
            expect(page.get_by_text("Décision reportée", exact=True)).to_be_visible()
            shot(page, folder, "06-decision-reportee")
            page.get_by_role("link", name="Versions et historique des règles").click()
            expect(page.get_by_role("link", name="rapport de changements")).to_be_visible()
            shot(page, folder, "07-versions")
            page.get_by_role("link", name="différences avec le précédent").click()
            expect(page.get_by_role("heading", level=1)).to_contain_text("Différences")
            shot(page, folder, "08-diff")
            # A publisher is refused another publisher's package, as if it did not exist.
            other = browser.new_page(viewport={"width": 1366, "height": 700})
            other.set_default_timeout(30_000)
            other.goto(base + "/connexion")
            other.get_by_label("Identifiant").fill("acme-user")
            other.get_by_label("Mot de passe").fill(PASSWORD)
            other.get_by_role("button", name="Se connecter").click()
            expect(other.get_by_role("link", name="lgc-acme-v1.zip")).to_be_visible()
            answer = other.goto(base + "/paquet?cle=inbox%2Fglobex%2Flgc-globex.zip")
            assert answer is not None and answer.status == 404
            expect(other.get_by_role("heading", level=1)).to_contain_text("Introuvable")
            shot(other, folder, "09-editeur-refuse")
        finally:
            browser.close()
