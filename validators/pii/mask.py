"""Masked forms of identifiers for reports: the sex digit and the key at most, never the rest."""

from __future__ import annotations

_HIDDEN_GROUPS = "** ** ** *** ***"


def mask_nir(sex: str, key: str | None) -> str:
    """``2 ** ** ** *** *** 96`` for a NIR with key, ``2 ** ** ** *** *** --`` without one."""
    shown_sex = sex if sex in "123478" and len(sex) == 1 else "*"
    shown_key = key if key is not None and len(key) == 2 and key.isdigit() else "--"
    return f"{shown_sex} {_HIDDEN_GROUPS} {shown_key}"


__all__ = ["mask_nir"]
