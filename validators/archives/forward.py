"""A forward-only, bounded view of a stream, for readers (``tarfile``) that expect ``seek`` and ``tell``.

Seeking forward reads and discards (the data may be a decompressed stream with no random access);
seeking back is refused. No single read may ask for more than ``max_read`` bytes: a tar header that
declares a 10 GiB "long name" or pax record is refused instead of being loaded into memory.
"""

from __future__ import annotations

import io
from typing import Any

from validators.archives.bounded import MalformedError

SKIP_BLOCK = 1024 * 1024


class ForwardReader(io.RawIOBase):
    def __init__(self, raw: Any, *, max_read: int) -> None:
        super().__init__()
        self.raw = raw
        self.max_read = max_read
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or size > self.max_read:
            raise MalformedError("a header asks for a block over the read limit")
        data: bytes = self.raw.read(size)
        self.position += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = offset if whence == io.SEEK_SET else self.position + offset if whence == io.SEEK_CUR else -1
        if target < self.position:
            raise MalformedError("the archive asks to read backwards")
        while self.position < target:
            step = self.read(min(SKIP_BLOCK, target - self.position))
            if not step:
                break  # past the end: the next read returns nothing, as a file would
        return self.position
