"""Real media type of content, from its bytes (libmagic through python-magic), never from its name."""

from __future__ import annotations

import threading
from functools import cache

SNIFF_BYTES = 256 * 1024
UNKNOWN = "application/octet-stream"

_lock = threading.Lock()


class SnifferUnavailableError(RuntimeError):
    """libmagic could not be loaded: type detection cannot run (reported as a check not run)."""


@cache
def _magic() -> object:
    try:
        import magic
    except ImportError as exc:  # python-magic missing or libmagic1 absent
        raise SnifferUnavailableError(str(exc)) from exc
    try:
        return magic.Magic(mime=True)
    except Exception as exc:
        raise SnifferUnavailableError(str(exc)) from exc


def media_type(head: bytes) -> str:
    """Media type of content whose first bytes are ``head`` (pass at least SNIFF_BYTES when you can)."""
    if not head:
        return "application/x-empty"
    sniffer = _magic()
    with _lock:  # libmagic handles are not thread-safe
        result = sniffer.from_buffer(head[:SNIFF_BYTES])  # type: ignore[attr-defined]
    return str(result or UNKNOWN)
