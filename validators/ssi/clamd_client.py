"""A clamd client that fails closed: every limit, timeout, odd reply or lost connection is an exception.

Speaks the null-terminated (``z``) clamd protocol over a unix socket or TCP: ``INSTREAM`` with large
chunks written by ``sendall``, ``FILDES`` (a descriptor passed over a local unix socket, not bound by
StreamMaxLength), ``VERSION`` and ``PING``. A reply is accepted only if it has exactly the expected
shape; nothing else is ever read as "clean". See README.md for why this replaces the ``clamd`` package.
"""

from __future__ import annotations

import array
import os
import re
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

DEFAULT_CHUNK = 1024 * 1024  # clamd reads chunks of any size; large ones cut syscalls and round trips
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 120.0
MAX_REPLY = 64 * 1024  # a verdict line is short; anything longer is not a clamd reply

_SIGNATURE = r"[A-Za-z0-9_.:\-+/()\[\]{}#=,]+"
_SCAN_REPLY = re.compile(
    rf"^(?P<name>stream|fd\[\d+\]): (?:(?P<ok>OK)|(?P<sig>{_SIGNATURE}) FOUND|(?P<err>[ -~]{{1,200}}) ERROR)$"
)
_VERSION_REPLY = re.compile(
    r"^ClamAV (?P<engine>[0-9][0-9A-Za-z.\-]*)(?:/(?P<db>\d+)/(?P<date>[ -~]{1,64}))?$"
)


class ClamdError(Exception):
    """The scan did not produce a trustworthy verdict. Messages never quote scanned content."""


class ClamdUnavailableError(ClamdError):
    """clamd could not be reached (no socket, refused, connect timeout)."""


class ClamdTimeoutError(ClamdError):
    """clamd did not answer in time."""


class ClamdConnectionLostError(ClamdError):
    """The connection broke mid-scan (clamd closed it, crashed or refused the stream)."""


class ClamdProtocolError(ClamdError):
    """clamd answered something this client does not recognise."""


class ClamdLimitError(ClamdError):
    """clamd refused the data because of one of its limits (StreamMaxLength...)."""


class ClamdScanError(ClamdError):
    """clamd answered ERROR for this scan."""


@dataclass(frozen=True)
class ClamdAddress:
    """Where clamd listens: ``unix:/path/clamd.sock`` or ``host:port``."""

    unix_path: str | None = None
    host: str | None = None
    port: int | None = None

    @staticmethod
    def parse(text: str) -> ClamdAddress:
        text = text.strip()
        if text.startswith("unix:"):
            path = text[len("unix:") :]
            if not path:
                raise ValueError("empty unix socket path")
            return ClamdAddress(unix_path=path)
        if text.startswith("/"):
            return ClamdAddress(unix_path=text)
        host, sep, port = text.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("expected unix:/path or host:port")
        return ClamdAddress(host=host.strip("[]"), port=int(port))

    @property
    def is_local(self) -> bool:
        return self.unix_path is not None

    def __str__(self) -> str:
        return f"unix:{self.unix_path}" if self.unix_path else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class ScanReply:
    """A verdict clamd really gave: clean, or the signatures it found."""

    signatures: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        return not self.signatures


@dataclass(frozen=True)
class ClamdVersion:
    engine: str
    database_version: str | None
    database_date: str | None


def parse_scan_reply(raw: bytes) -> ScanReply:
    """Parse a complete ``z``-protocol scan reply; raise unless it is exactly a verdict."""
    if not raw.endswith(b"\0"):
        raise ClamdProtocolError("reply not terminated (connection closed early)")
    try:
        lines = raw[:-1].decode("ascii").split("\0")
    except UnicodeDecodeError:
        raise ClamdProtocolError("reply is not ASCII") from None
    found: list[str] = []
    clean = False
    for line in lines:
        match = _SCAN_REPLY.match(line)
        if match is None:
            raise ClamdProtocolError(f"unexpected reply of {len(line)} characters")
        if match["err"] is not None:
            reason = match["err"]
            if "size limit exceeded" in reason:
                raise ClamdLimitError(f"clamd limit: {reason}")
            raise ClamdScanError(f"clamd error: {reason}")
        if match["ok"] is not None:
            clean = True
        else:
            found.append(match["sig"])
    if clean and (found or len(lines) != 1):
        raise ClamdProtocolError("reply mixes OK with other results")
    return ScanReply(tuple(found))


def parse_version(raw: bytes) -> ClamdVersion:
    text = raw.rstrip(b"\0").decode("ascii", "replace").strip()
    match = _VERSION_REPLY.match(text)
    if match is None:
        raise ClamdProtocolError("unexpected VERSION reply")
    return ClamdVersion(match["engine"], match["db"], match["date"])


class ClamdClient:
    """One connection per command (clamd closes ``z`` sessions after the reply). Thread-safe."""

    def __init__(
        self,
        address: ClamdAddress,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        chunk_size: int = DEFAULT_CHUNK,
    ) -> None:
        self.address = address
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.chunk_size = chunk_size

    # --- commands -----------------------------------------------------------------------------------

    def ping(self) -> None:
        if self._command(b"zPING\0", self.connect_timeout) != b"PONG\0":
            raise ClamdProtocolError("unexpected PING reply")

    def version(self) -> ClamdVersion:
        return parse_version(self._command(b"zVERSION\0", self.connect_timeout))

    def instream(self, chunks: Iterable[bytes], timeout: float | None = None) -> ScanReply:
        """Stream data to clamd; ``chunks`` may be any iterable of bytes (a file read in blocks)."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.read_timeout)
        with self._connect(deadline) as sock:
            try:
                sock.sendall(b"zINSTREAM\0")
                for chunk in chunks:
                    for start in range(0, len(chunk), self.chunk_size):
                        piece = chunk[start : start + self.chunk_size]
                        self._set_timeout(sock, deadline)
                        sock.sendall(len(piece).to_bytes(4, "big") + piece)
                self._set_timeout(sock, deadline)
                sock.sendall(b"\0\0\0\0")
            except TimeoutError:
                raise ClamdTimeoutError("clamd did not accept the stream in time") from None
            except OSError:
                # clamd closes the socket when it refuses a stream; its reason may already be buffered.
                raise self._refusal(sock) from None
            return parse_scan_reply(self._read_reply(sock, deadline))

    def instream_file(self, stream: BinaryIO, timeout: float | None = None) -> ScanReply:
        return self.instream(iter(lambda: stream.read(self.chunk_size), b""), timeout)

    def fildes(self, fd: int, timeout: float | None = None) -> ScanReply:
        """Pass an open descriptor to a clamd on a local unix socket (no copy, no stream limit)."""
        if not self.address.is_local:
            raise ClamdError("FILDES needs a local unix socket")
        deadline = time.monotonic() + (timeout if timeout is not None else self.read_timeout)
        with self._connect(deadline) as sock:
            try:
                sock.sendall(b"zFILDES\0")
                fds = array.array("i", [fd])
                sent = sock.sendmsg([b"\0"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds.tobytes())])
                if sent != 1:
                    raise ClamdConnectionLostError("descriptor not sent")
            except TimeoutError:
                raise ClamdTimeoutError("clamd did not accept the descriptor in time") from None
            except OSError:
                raise self._refusal(sock) from None
            return parse_scan_reply(self._read_reply(sock, deadline))

    def scan_bytes(self, data: bytes, timeout: float | None = None) -> ScanReply:
        """In-memory content: a memfd passed by FILDES locally (never a file on disk), else INSTREAM."""
        if self.address.is_local and hasattr(os, "memfd_create"):
            fd = os.memfd_create("proofcheck-scan", os.MFD_CLOEXEC)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.lseek(fd, 0, os.SEEK_SET)
                return self.fildes(fd, timeout)
            finally:
                os.close(fd)
        return self.instream([data], timeout)

    # --- plumbing -----------------------------------------------------------------------------------

    def _connect(self, deadline: float) -> socket.socket:
        timeout = min(self.connect_timeout, max(0.001, deadline - time.monotonic()))
        try:
            if self.address.unix_path is not None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(timeout)
                try:
                    sock.connect(self.address.unix_path)
                except BaseException:
                    sock.close()
                    raise
                return sock
            assert self.address.host is not None and self.address.port is not None
            return socket.create_connection((self.address.host, self.address.port), timeout=timeout)
        except TimeoutError:
            raise ClamdUnavailableError(f"connect to clamd at {self.address} timed out") from None
        except OSError as exc:
            raise ClamdUnavailableError(
                f"cannot connect to clamd at {self.address} ({exc.strerror})"
            ) from None

    def _command(self, command: bytes, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        with self._connect(deadline) as sock:
            try:
                sock.sendall(command)
            except OSError:
                raise ClamdConnectionLostError("connection lost while sending a command") from None
            return self._read_reply(sock, deadline)

    @staticmethod
    def _set_timeout(sock: socket.socket, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        sock.settimeout(left)

    def _read_reply(self, sock: socket.socket, deadline: float) -> bytes:
        reply = bytearray()
        try:
            while True:
                self._set_timeout(sock, deadline)
                data = sock.recv(4096)
                if not data:
                    break
                reply += data
                if len(reply) > MAX_REPLY:
                    raise ClamdProtocolError("reply too long")
        except TimeoutError:
            raise ClamdTimeoutError("clamd did not answer in time") from None
        except OSError:
            raise ClamdConnectionLostError("connection lost while reading the reply") from None
        if not reply:
            raise ClamdConnectionLostError("clamd closed the connection without a reply")
        return bytes(reply)

    @staticmethod
    def _refusal(sock: socket.socket) -> ClamdError:
        """Why clamd stopped reading: its buffered reply if any, else a lost connection."""
        try:
            sock.settimeout(0.5)
            reply = sock.recv(4096)
        except OSError:
            reply = b""
        if b"size limit exceeded" in reply:
            return ClamdLimitError("clamd refused the stream: StreamMaxLength exceeded")
        if reply:
            return ClamdConnectionLostError("clamd stopped reading the stream")
        return ClamdConnectionLostError("connection lost while streaming")
