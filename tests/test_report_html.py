"""The instructors' HTML report: complete, self-contained, escaped, and readable in a real browser."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest_reports import HOSTILE, empty_verdict, hostile_verdict, sample_verdict
from PIL import Image, ImageStat

from validators.report import html

CHROMIUM = "/usr/bin/chromium"


class _Collector(HTMLParser):
    """Collects what matters for the checks: tags, attributes, text, and any nesting error."""

    VOID = frozenset({"meta", "br", "img", "link", "input", "hr", "col", "wbr"})

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> _Collector:
    collector = _Collector()
    collector.feed(page)
    collector.close()
    return collector


def visible_text(page: str) -> str:
    text = parse(page).text
    return re.sub(r"\s+", " ", " ".join(text))


def test_page_is_well_nested_and_has_every_part() -> None:
    page = html.render(sample_verdict())
    parsed = parse(page)
    assert parsed.errors == []
    assert parsed.stack == ["html"] or parsed.stack == []
    text = visible_text(page)
    for expected in (
        "editeur-lgc-preuves.zip",
        "QUARANTAINE",
        "REM-MDV-LGC-SF-Va1",
        "Général, Médecin traitant",
        "sha256:0123456789ab@2025-01-02T03:04:05Z",  # ruleset version
        "20240927120000",  # J66 component
        "ClamAV 1.4.6",  # antivirus provenance
        "daily 27000",
        "INS.41.2.2",
        "écrite « INS 41.2.2 »",
        "DMP.3.1.1/xdm.zip!2:DOC0001.XML",  # a nested child
        "outil.exe",  # unmapped file
        "Expected proof INS.41.3.1 is not in the package.",  # package finding
        "page 2, ligne 14, caractères 120–135",  # location
        "ligne 42, colonne 7, XPath /ClinicalDocument/component[1]/section/code",
        "2 ** ** ** *** *** 96",  # masked evidence
        "cda (partiel : terminology absent)",
        "pii (non exécuté : time limit)",
    ):
        assert expected in text, expected


def test_rule_titles_come_from_the_catalogue_in_french() -> None:
    text = visible_text(html.render(sample_verdict()))
    assert "L'extension ne correspond pas au contenu" in text  # format.extension-mismatch
    assert "Une vérification a dépassé son temps limite" in text  # system.timeout
    assert "Extension does not match the content" not in text
    # a rule unknown to this version is shown by id, never dropped
    unknown = visible_text(html.render(hostile_verdict()))
    assert "Règle non cataloguée" in unknown


def test_every_status_is_spelled_out_not_only_coloured() -> None:
    text = visible_text(html.render(sample_verdict()))
    assert "✖ Non conforme (fail)" in text  # INS.41.2.2 (the NIR)
    assert "⚠ À examiner (warning)" in text  # DOC.3.1.2 (mismatch warning)
    assert "⊘ Vérification incomplète (error)" in text  # the timed-out check
    assert "✔ Conforme (pass)" in text  # ANN.1.1.1
    overview = html.render(sample_verdict()).split('id="h-overview"', 1)[1].split("</table>", 1)[0]
    statuses = re.findall(r'class="badge st-(\w+)"', overview)
    assert statuses == ["fail", "warning", "error", "pass"]  # INS, DOC, DMP, ANN in document order


def test_no_quarantine_banner_without_ssi_error() -> None:
    assert "QUARANTAINE" not in html.render(sample_verdict(quarantine=False))
    assert "QUARANTAINE" in html.render(sample_verdict(quarantine=True))


def test_self_contained_and_script_free() -> None:
    page = html.render(sample_verdict())
    tags = parse(page).tags
    names = {tag for tag, _ in tags}
    assert not names & {"script", "link", "img", "iframe", "object", "embed", "form"}
    for _tag, attrs in tags:
        assert not any(name.startswith("on") for name in attrs)
        for name in ("src", "href"):
            value = attrs.get(name)
            assert value is None or value.startswith("#"), value  # only in-page anchors
    assert "http://" not in page and "https://" not in page
    csp = [a["content"] for t, a in tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in (csp[0] or "")


def test_publisher_text_is_escaped_everywhere() -> None:
    page = html.render(hostile_verdict())
    parsed = parse(page)
    assert parsed.errors == []
    assert "script" not in {tag for tag, _ in parsed.tags}
    assert "img" not in {tag for tag, _ in parsed.tags}
    assert "<script>" not in page and "<img" not in page
    # the text is shown as text, literally, so an instructor sees what the publisher wrote
    assert HOSTILE in "".join(parsed.text)


def test_empty_package_renders() -> None:
    page = html.render(empty_verdict())
    assert parse(page).errors == []
    text = visible_text(page)
    assert "Aucune preuve identifiée" in text and "Aucun constat." in text


def test_a_stored_verdict_read_back_renders_the_same_page() -> None:
    from validators.report import json_report
    from validators.verdict_io import read_verdict

    verdict = sample_verdict()
    stored = read_verdict(json_report.render(verdict).encode("utf-8"))
    assert html.render(stored.verdict) == html.render(verdict)


@pytest.fixture(scope="module")
def screenshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip("chromium is not installed (Debian package 'chromium'; the CI installs it)")
    binary = CHROMIUM if Path(CHROMIUM).exists() else str(shutil.which("chromium"))
    folder = tmp_path_factory.mktemp("html-report")
    page = folder / "report.html"
    page.write_text(html.render(sample_verdict()), encoding="utf-8")
    png = folder / "report.png"
    command = [
        binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={folder / 'profile'}", f"--screenshot={png}", "--window-size=1280,2000",
        page.as_uri(),
    ]
    subprocess.run(command, check=False, capture_output=True, timeout=120)
    return png


def test_chromium_renders_a_non_blank_page(screenshot: Path) -> None:
    assert screenshot.exists(), "chromium wrote no screenshot"
    with Image.open(screenshot) as image:
        assert image.size == (1280, 2000)
        grey = image.convert("L")
        darkest = grey.getextrema()[0]
        assert isinstance(darkest, int) and darkest < 80  # there is dark text on the page
        stat = ImageStat.Stat(grey)
        assert stat.stddev[0] > 20  # far from a uniform (blank) image
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colours is None or len(colours) > 50  # text, badges and the banner, not a flat fill


def test_many_information_findings_fold_away_without_script() -> None:
    from dataclasses import replace

    from validators.model import Finding, Severity

    many = tuple(
        Finding("package.missing-proof", Severity.INFO, f"Expected proof INS.{n}.1.1 is not in the package.")
        for n in range(1, 31)
    )
    warning = Finding("package.unknown-proof", Severity.WARNING, "Unknown proof XYZ.1.1.1.")
    page = html.render(replace(sample_verdict(), package_findings=(*many, warning)))
    section = page.split('id="h-package"', 1)[1].split("</section>", 1)[0]
    assert section.index("Unknown proof XYZ.1.1.1.") < section.index("<details>")  # the warning stays in view
    assert "<summary>30 informations</summary>" in section
    assert section.count("Expected proof INS.") == 30  # folded, never dropped
    assert parse(page).errors == []


def test_findings_are_shown_in_french_and_english_only_where_there_is_no_french() -> None:
    """A verdict with a NIR and a malware finding (and a CDA one), as the engine builds them."""
    from dataclasses import replace

    from validators import rules
    from validators.model import Location

    nir = rules.finding("pii.nir", Location(page=2), evidence="2 ** ** ** *** *** 96")
    malware = rules.finding("ssi.malware", signature="Eicar-Test-Signature")
    typecode = rules.finding("cda.typecode", Location(line=3), code="11369-6", code_system="2.16.840.1.113883.6.1",
                             version="20240927")
    sample = sample_verdict()
    proof = replace(sample.proofs[0], files=(replace(sample.proofs[0].files[1], findings=(nir, malware, typecode)),))
    page = html.render(replace(sample, proofs=(proof,)))
    assert parse(page).errors == []
    text = visible_text(page)
    assert typecode.message_fr is not None and typecode.message_fr.replace('"', "") in text.replace('"', "")
    assert typecode.message not in text and "Type de document absent du JDV_J66-TypeCode-DMP" in text
    for finding in (nir, malware):
        rule = rules.get(finding.rule)
        if rule.fr:  # translated: the French message and title, never the English message
            assert finding.message_fr is not None and finding.message_fr in text and finding.message not in text
            assert dict(rule.fr)["title"] in text
        else:  # not translated yet: the English message, marked as English for readers and screen readers
            assert f'<span lang="en">{html.e(finding.message)}</span>' in page
    assert "2 ** ** ** *** *** 96" in text  # the evidence stays masked whatever the language
