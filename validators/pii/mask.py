"""Masked forms of identifiers for reports: the sex digit and the key at most, never the rest."""

from __future__ import annotations

_HIDDEN_GROUPS = "** ** ** *** ***"


def mask_nir(sex: str, key: str | None) -> str:
    """``2 ** ** ** *** *** 96`` for a NIR with key, ``2 ** ** ** *** *** --`` without one."""
    shown_sex = sex if sex in "123478" and len(sex) == 1 else "*"
    shown_key = key if key is not None and len(key) == 2 and key.isdigit() else "--"
    return f"{shown_sex} {_HIDDEN_GROUPS} {shown_key}"





def mask_identifiers(text: str) -> str:
    """``text`` with every NIR-shaped number in it masked (key valid, wrong or absent).

    For what reports repeat from the package itself — file and folder names, member and attachment names
    — so that a NIR a publisher put in a file name is reported (pii.*) but never copied into the report.
    """
    if sum(c.isdigit() for c in text) < 9:  # the common case: no room for a NIR body, even with letters
        return text
    from validators.pii.nir import find_nirs  # the recognizer imports this module's neighbours

    out: list[str] = []
    last = 0
    for match in find_nirs(text, lenient=True):
        if match.start < last:
            continue
        out += [text[last : match.start], mask_nir(match.sex, match.key)]
        last = match.end
    return "".join(out) + text[last:] if out else text
__all__ = ["mask_identifiers", "mask_nir"]
