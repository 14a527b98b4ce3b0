"""Files that hold whole messages: an mbox (messages after "From " lines) and an SMTP session transcript
(the message is what the client sent after DATA, up to the line holding a single dot). Each message found
becomes an ``.eml`` child, read by the e-mail check at the next depth.
"""

from __future__ import annotations

import re

from validators import rules
from validators.mail import names
from validators.mail.harvest import Harvest

_MBOX_SEPARATOR = re.compile(rb"(?:\r?\n)(?=From )")
_DATA = re.compile(rb"^DATA[ \t]*\r?\n(?:354[^\n]*\n)?", re.MULTILINE | re.IGNORECASE)
_END_OF_DATA = re.compile(rb"^\.\r?$", re.MULTILINE)
_FROM_QUOTED = re.compile(rb"^>(>*From )", re.MULTILINE)


def _too_many(harvest: Harvest) -> bool:
    if len(harvest.children) >= harvest.limits.max_mbox_messages:
        harvest.add(rules.finding("ssi.email.too-many-parts", limit=harvest.limits.max_mbox_messages))
        return True
    return False


def read_mbox(data: bytes, harvest: Harvest) -> None:
    for index, chunk in enumerate(_MBOX_SEPARATOR.split(data), start=1):
        harvest.ctx.check_time()
        if _too_many(harvest):
            return
        message = chunk.split(b"\n", 1)[1] if chunk.startswith(b"From ") and b"\n" in chunk else chunk
        if message.strip():
            # mboxrd quotes "From " at line starts with '>': undo one level.
            harvest.add_child(f"message-{index}.eml", _FROM_QUOTED.sub(rb"\1", message), names.origin("in mbox"))


def read_smtp(data: bytes, harvest: Harvest) -> None:
    position = 0
    index = 0
    while True:
        harvest.ctx.check_time()
        start = _DATA.search(data, position)
        if start is None:
            return
        end = _END_OF_DATA.search(data, start.end())
        if end is None:
            harvest.malformed("the SMTP DATA section has no closing '.' line (cut short?)")
            stop = len(data)
        else:
            stop = end.start()
        if _too_many(harvest):
            return
        index += 1
        lines = data[start.end() : stop].splitlines(keepends=True)
        # Dot-stuffing (RFC 5321 4.5.2): a leading dot was doubled by the client.
        message = b"".join(line[1:] if line.startswith(b"..") else line for line in lines)
        harvest.add_child(f"message-smtp-{index}.eml", message, names.origin("in SMTP session"))
        if end is None:
            return
        position = end.end()
