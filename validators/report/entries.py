"""French words for the fixed names the checks give to places inside a file (``Location.entry``).

An archive member or an e-mail attachment is named by the publisher and shown as it is; the places the
checks name themselves ("PDF metadata", "PNG tEXt chunk", "video subtitles"...) are shown in French.
"""

from __future__ import annotations

import re

_FIXED = {
    "file name": "nom du fichier",
    "PDF metadata": "métadonnées du PDF",
    "PDF form fields": "champs de formulaire du PDF",
    "PDF XMP metadata": "métadonnées XMP du PDF",
    "PDF annotations": "annotations du PDF",
    "PDF bookmarks": "signets du PDF",
    "e-mail headers": "en-têtes du courriel",
    "data after the image's end marker": "données après le marqueur de fin de l'image",
    "image bytes": "octets de l'image",
    "video metadata": "métadonnées de la vidéo",
    "video subtitles": "sous-titres de la vidéo",
    "JPEG comment": "commentaire JPEG",
    "GIF comment": "commentaire GIF",
    "GIF extension": "extension GIF",
}
_PATTERNS = (
    (re.compile(r"^(PNG|WebP) (\w+) chunk$"), r"bloc \1 \2"),
    (re.compile(r"^JPEG (APP\d+) segment$"), r"segment JPEG \1"),
    (re.compile(r"^PDF earlier revision (\d+)$"), r"révision antérieure \1 du PDF"),
    (re.compile(r"^(\w+) code$"), r"code \1"),
    (re.compile(r"^(\w+) metadata \(EXIF\)$"), r"métadonnées EXIF (\1)"),
    (re.compile(r"^(\w+) metadata$"), r"métadonnées \1"),
)


def entry_in_french(entry: str) -> str:
    """The French name of a place a check named, else the entry as it is (a member's own name)."""
    if entry in _FIXED:
        return _FIXED[entry]
    for pattern, words in _PATTERNS:
        if pattern.match(entry):
            return pattern.sub(words, entry)
    return entry


__all__ = ["entry_in_french"]
