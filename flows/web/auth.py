"""Who is using the workbench: accounts, sessions that expire, and one-time form tokens.

- **Accounts** (``web_accounts``): an *instructor* sees every submission and decides; a *publisher*
  sees only the packages under ``inbox/<publisher>/`` and its own dry runs, read only. Local accounts
  hold an Argon2id hash (``argon2-cffi``); accounts signed in through OpenID Connect hold none.
- **Sessions** (``web_sessions``): a random token in an HttpOnly cookie, stored only as its SHA-256;
  it ends at sign-out, after ``session_seconds`` from sign-in, or after ``idle_seconds`` unused. The
  account is read again on every request: a disabled account or a changed role takes effect at once.
- **Form tokens**: every form carries ``nonce.issued.hmac(secret, binding|action|nonce|issued)``,
  bound to the session (or, before sign-in, to a pre-session cookie) and to the form's action; the
  nonce is recorded when used, so a forged post fails the HMAC and a replayed one finds its nonce
  taken. Used nonces are forgotten once their tokens have expired.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

INSTRUCTOR = "instructor"
PUBLISHER = "publisher"
ROLES = (INSTRUCTOR, PUBLISHER)
_hasher = PasswordHasher()  # Argon2id with the library's current defaults
MAX_FAILURES = 5
LOCKOUT_SECONDS = 15 * 60

_meta = sa.MetaData()
accounts = sa.Table(
    "web_accounts",
    _meta,
    sa.Column("username", sa.String(128), primary_key=True),
    sa.Column("password_hash", sa.String(256)),  # NULL: signs in through OpenID Connect only
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("publisher", sa.String(128)),
    sa.Column("display_name", sa.String(256), nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("source", sa.String(8), nullable=False),  # "local" | "oidc"
    sa.Column("created_at", sa.Float, nullable=False),
)
sessions = sa.Table(
    "web_sessions",
    _meta,
    sa.Column("token_sha256", sa.String(64), primary_key=True),
    sa.Column("username", sa.String(128), nullable=False, index=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_seen", sa.Float, nullable=False),
)
nonces = sa.Table(
    "web_form_nonces",
    _meta,
    sa.Column("nonce", sa.String(64), primary_key=True),
    sa.Column("used_at", sa.Float, nullable=False, index=True),
)


@dataclass(frozen=True)
class User:
    username: str
    role: str
    display_name: str
    publisher: str | None = None

    @property
    def instructor(self) -> bool:
        return self.role == INSTRUCTOR


class AccountError(ValueError):
    """An account that cannot be created as asked."""


def valid_publisher(name: str) -> bool:
    """A publisher is a folder name under ``inbox/``: one segment, no separator."""
    return bool(name) and len(name) <= 128 and "/" not in name and name not in (".", "..") and name.isprintable()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Auth:
    def __init__(self, engine: sa.Engine, secret: bytes, session_seconds: int, idle_seconds: int,
                 hasher: PasswordHasher | None = None) -> None:
        self.engine = engine
        self.hasher = hasher or _hasher
        # Verified when the account is unknown or locked: the same work, so timing tells nothing.
        self._dummy = self.hasher.hash("proofcheck: no such account")
        self.secret = secret
        self.session_seconds = session_seconds
        self.idle_seconds = idle_seconds
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        _meta.create_all(engine)

    # -- accounts -----------------------------------------------------------------------------------------

    def add_account(self, username: str, role: str, *, password: str | None, display_name: str = "",
                    publisher: str | None = None, source: str = "local", enable: bool = False) -> None:
        """Create or update an account; a disabled one stays disabled unless ``enable`` (an administrator's
        ``web-account add``), so an identity provider's next sign-in never re-opens it."""
        if role not in ROLES:
            raise AccountError(f"role must be one of {', '.join(ROLES)}")
        if role == PUBLISHER and not valid_publisher(publisher or ""):
            raise AccountError("a publisher account needs --publisher NAME (its folder under inbox/)")
        if role == INSTRUCTOR and publisher:
            raise AccountError("an instructor account has no publisher")
        if not username or len(username) > 128 or not username.isprintable():
            raise AccountError("invalid user name")
        if source == "local" and (password is None or len(password) < 12):
            raise AccountError("a local account needs a password of at least 12 characters")
        values = {
            "username": username, "role": role, "publisher": publisher, "display_name": display_name or username,
            "disabled": False, "source": source, "created_at": time.time(),
            "password_hash": self.hasher.hash(password) if password is not None else None,
        }
        with self.engine.begin() as conn:
            existing = conn.execute(sa.select(accounts.c.disabled).where(accounts.c.username == username)).first()
            if existing is not None:
                values["disabled"] = bool(existing.disabled) and not enable
                values.pop("created_at")
                conn.execute(accounts.update().where(accounts.c.username == username).values(**values))
            else:
                conn.execute(accounts.insert().values(**values))

    def disabled(self, username: str) -> bool:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(accounts.c.disabled).where(accounts.c.username == username)).first()
            return row is not None and bool(row.disabled)

    def disable(self, username: str) -> bool:
        with self.engine.begin() as conn:
            done = conn.execute(accounts.update().where(accounts.c.username == username).values(disabled=True))
            conn.execute(sessions.delete().where(sessions.c.username == username))
            return bool(done.rowcount)

    def list_accounts(self) -> list[dict[str, object]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(accounts).order_by(accounts.c.username))
            return [{k: v for k, v in r._mapping.items() if k != "password_hash"} for r in rows]

    def _user(self, conn: sa.Connection, username: str) -> User | None:
        row = conn.execute(sa.select(accounts).where(accounts.c.username == username)).first()
        if row is None or row.disabled:
            return None
        return User(row.username, row.role, row.display_name, row.publisher)

    def _locked(self, username: str, now: float) -> bool:
        with self._lock:
            recent = [t for t in self._failures.get(username, []) if now - t < LOCKOUT_SECONDS]
            self._failures[username] = recent
            return len(recent) >= MAX_FAILURES

    def _failed(self, username: str, now: float) -> None:
        with self._lock:
            self._failures.setdefault(username, []).append(now)

    def _spend(self, password: str) -> None:
        with contextlib.suppress(VerificationError, InvalidHashError):
            self.hasher.verify(self._dummy, password)

    def check_password(self, username: str, password: str) -> User | None:
        """The account if the password is right (same cost whether the account exists or not)."""
        now = time.time()
        if self._locked(username, now):
            self._spend(password)  # the same cost: a locked account answers no faster
            return None
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(accounts).where(accounts.c.username == username)).first()
        stored = row.password_hash if row is not None and row.password_hash else self._dummy
        try:
            self.hasher.verify(stored, password)
            ok = row is not None and bool(row.password_hash) and not row.disabled
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok or row is None:
            self._failed(username, now)
            return None
        if self.hasher.check_needs_rehash(stored):
            with self.engine.begin() as conn:
                conn.execute(accounts.update().where(accounts.c.username == username)
                             .values(password_hash=self.hasher.hash(password)))
        return User(row.username, row.role, row.display_name, row.publisher)

    # -- sessions -----------------------------------------------------------------------------------------

    def open_session(self, user: User) -> str:
        token = secrets.token_urlsafe(32)
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(sessions.delete().where(sessions.c.created_at < now - self.session_seconds))
            conn.execute(sessions.insert().values(token_sha256=_digest(token), username=user.username,
                                                  created_at=now, last_seen=now))
        return token

    def session_user(self, token: str | None) -> User | None:
        """The signed-in user of a session cookie, or None (absent, unknown, expired, account disabled)."""
        if not token or len(token) > 128:
            return None
        now = time.time()
        key = _digest(token)
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(sessions).where(sessions.c.token_sha256 == key)).first()
            if row is None:
                return None
            if now - row.created_at > self.session_seconds or now - row.last_seen > self.idle_seconds:
                conn.execute(sessions.delete().where(sessions.c.token_sha256 == key))
                return None
            if now - row.last_seen > 30:  # one write a half-minute is enough to track idleness
                conn.execute(sessions.update().where(sessions.c.token_sha256 == key).values(last_seen=now))
            return self._user(conn, row.username)

    def close_session(self, token: str | None) -> None:
        if token:
            with self.engine.begin() as conn:
                conn.execute(sessions.delete().where(sessions.c.token_sha256 == _digest(token)))

    @staticmethod
    def binding(token: str) -> str:
        """What a form token is bound to: the session's digest (never the token itself)."""
        return _digest(token)

    # -- form tokens --------------------------------------------------------------------------------------

    def _mac(self, binding: str, action: str, nonce: str, issued: str) -> str:
        message = f"{binding}|{action}|{nonce}|{issued}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def form_token(self, binding: str, action: str) -> str:
        nonce = secrets.token_hex(16)
        issued = str(int(time.time()))
        return f"{nonce}.{issued}.{self._mac(binding, action, nonce, issued)}"

    def check_form_token(self, binding: str, action: str, token: str | None) -> str | None:
        """None when the token is good (and now used); else why not: ``forged``, ``expired``, ``replayed``."""
        parts = (token or "").split(".")
        if len(parts) != 3 or not parts[1].isdigit() or len(parts[0]) != 32:
            return "forged"
        nonce, issued, mac = parts
        if not hmac.compare_digest(mac, self._mac(binding, action, nonce, issued)):
            return "forged"
        now = time.time()
        if now - int(issued) > self.session_seconds or int(issued) > now + 60:
            return "expired"
        try:
            with self.engine.begin() as conn:
                conn.execute(nonces.delete().where(nonces.c.used_at < now - self.session_seconds - 60))
                conn.execute(nonces.insert().values(nonce=nonce, used_at=now))
        except sa.exc.IntegrityError:
            return "replayed"
        return None


__all__ = ["INSTRUCTOR", "PUBLISHER", "ROLES", "AccountError", "Auth", "User", "valid_publisher"]
