"""Which packages the instructors' side may hand out: the one rule, and the only ways to a package's bytes.

The rule (``decide``): a package's bytes go to instructors only when its current verdict was **checked in
full** (every check ran, ``flows.completeness``), it is **not quarantined**, and its status is ``pass``,
``warning`` or ``fail``. A verdict where a check did not run (status ``error``, or ``fail`` with a gap:
a NIR found while clamd was down) hides the bytes until a later run completes every check; its report
(masked evidence only) and its index row, which says what did not run, stay readable.

Everything that gives instructors a way to the bytes goes through here: the index page's link
(``package_href``) and presigned URLs (``package_link``, for the instructors' workbench). The bucket
policy (``docker/bucket-policy.json``) enforces the same rule on the tags, for anyone reading the bucket
directly.
"""

from __future__ import annotations

import logging
import urllib.parse
from dataclasses import dataclass

from flows.completeness import gaps_of
from flows.index import IndexRow
from flows.storage import PackageGoneError, PackageRef, StorageError, Store
from validators.verdict_io import StoredVerdict, VerdictDocumentError, read_verdict

log = logging.getLogger(__name__)

READABLE_STATUSES = ("pass", "warning", "fail")
PRESIGN_SECONDS = 300  # a workbench link is for one download, not for sharing


@dataclass(frozen=True)
class Access:
    allowed: bool
    reason_fr: str = ""
    reason_en: str = ""


def decide(status: str, quarantine: bool, checked_in_full: bool | None, not_run: str | None = None) -> Access:
    """The rule. ``checked_in_full`` None (unknown, e.g. an index row older than the column) is a no."""
    if quarantine:
        return Access(False, "en quarantaine (risque SSI)", "quarantined (SSI risk)")
    if checked_in_full is not True:
        what = f" : {not_run}" if not_run else ""
        return Access(
            False,
            f"pas encore vérifié entièrement{what}",
            f"not yet checked in full{what.replace(' : ', ': ')}",
        )
    if status not in READABLE_STATUSES:
        return Access(False, f"statut {status}", f"status {status}")
    return Access(True)


def access(row: IndexRow) -> Access:
    """The rule applied to an index row (the current verdict of a package key)."""
    return decide(row.status, row.quarantine, row.checked_in_full, row.not_run)


def access_of(stored: StoredVerdict) -> Access:
    """The rule applied to a stored verdict (the record, read back), recomputing what did not run."""
    verdict = stored.verdict
    gaps = gaps_of(verdict)
    return decide(verdict.status.value, verdict.quarantine, gaps.in_full, gaps.label())


def package_href(row: IndexRow, reports_prefix: str = "reports/", *, folder: bool = False) -> str | None:
    """The index page's relative link to the package (the page is ``<reports_prefix>index.html``).

    None when the rule says no, and for a folder package (``folder``): it has no single object to link
    to. The link names the key, not the version: the bucket policy then checks the tags of whatever
    version is current, so a newer upload without its verdict yet is refused there.
    """
    if folder or not access(row).allowed:
        return None
    up = "../" * reports_prefix.count("/")
    return up + urllib.parse.quote(row.package_key, safe="/")


def package_link(store: Store, row: IndexRow, expires: int = PRESIGN_SECONDS) -> str | None:
    """A presigned GET of the exact package version of ``row``, or None when it must not be handed out.

    Beyond the rule on the row (the index is a cache), it re-reads the record: the row must be the
    version's latest stored verdict and that verdict must pass the rule; the version must still be in
    the inbox (not moved to quarantine, not replaced in an unversioned bucket). Any storage failure: None.
    """
    if not access(row).allowed or store.layout.is_marker(row.package_key):
        return None
    ref = PackageRef(store.bucket, row.package_key, row.etag or "", row.version_id)
    try:
        listing = store.verdict_listing(ref)
        if not listing or listing[-1][0] != row.json_key:
            return None  # a later verdict exists (e.g. a re-run): the row is not the current word
        if not access_of(read_verdict(store.get_bytes(row.json_key))).allowed:
            return None
        current = store.head(ref.key, ref.version_id)
        if not ref.version_id and current.etag != ref.etag:
            return None  # unversioned and replaced since: these bytes were not checked
        return store.presigned_get(current, expires)
    except PackageGoneError:
        return None
    except (StorageError, VerdictDocumentError) as exc:
        log.warning("no package link: %s", type(exc).__name__)
        return None
