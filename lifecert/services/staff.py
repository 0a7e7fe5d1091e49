"""Staff accounts: roles, argon2 passwords, login throttling, console sessions and API tokens.

Secrets handed to clients (session tokens, API tokens) are random 256-bit values;
only their sha256 is stored. Every login attempt and account change is audited.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from lifecert.domain.errors import AccessDenied, Conflict, ErrorCode, LifecertError, NotFound
from lifecert.services import audit
from lifecert.storage.models import StaffUser, utcnow
from lifecert.storage.models_staff import ApiToken, LoginThrottle, StaffSession


class Role(StrEnum):
    ADMIN = "admin"
    ENROLLMENT_STAFF = "enrollment_staff"
    CASEWORKER = "caseworker"
    AUDITOR = "auditor"
    COMMUNITY_WORKER = "community_worker"  # assisted certification and home visits (issue 15)


ROLES: tuple[Role, ...] = tuple(Role)
MIN_PASSWORD_LEN = 10


@dataclass(frozen=True)
class LoginPolicy:
    """Throttle on three keys, each counting failures within ``window`` and locking for ``lockout``:

    - the (username, client) pair after ``max_failures`` — the common case, one person mistyping;
    - the username from any address after ``max_failures_per_user`` — guessing one account from many
      addresses (higher, so that a stranger needs many tries to lock a colleague out);
    - the client address over all usernames after ``max_failures_per_client`` — password spraying.

    During a lockout even the right password is refused."""

    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)
    lockout: timedelta = timedelta(minutes=15)
    max_failures_per_user: int = 20
    max_failures_per_client: int = 30


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)


DEFAULT_LOGIN_POLICY = LoginPolicy()
DEFAULT_SESSION_POLICY = SessionPolicy()


@dataclass(frozen=True)
class Principal:
    """An authenticated staff member for one request. ``csrf_token`` is set for console sessions only."""

    user_id: int
    username: str
    role: Role
    display_name: str
    region_code: str | None
    via: str  # "session" | "token" | "cli"
    csrf_token: str | None = None


def _aware(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive timestamps; every stored time is UTC."""
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


# argon2id with the OWASP Password Storage Cheat Sheet's first recommended setting (19 MiB, 2 passes,
# 1 lane): ~0.1 s per check on the 2-core test machine under load, against 0.75 s for argon2-cffi's
# default (64 MiB, 3 passes, 4 lanes), which let five concurrent logins take 5 s (issue 11 H1/M4).
# Hashes made with other parameters still verify and are re-hashed at the next successful login.
ARGON2_TIME_COST = 2
ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_PARALLELISM = 1


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=ARGON2_TIME_COST, memory_cost=ARGON2_MEMORY_KIB, parallelism=ARGON2_PARALLELISM)


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def _check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LEN:
        raise LifecertError(f"password must have at least {MIN_PASSWORD_LEN} characters", code=ErrorCode.BAD_REQUEST)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise LifecertError(
            f"unknown role {role!r}; known: {', '.join(ROLES)}", code=ErrorCode.BAD_REQUEST
        ) from None


def get_user(session: Session, username: str) -> StaffUser:
    user = session.scalars(select(StaffUser).where(StaffUser.username == username)).first()
    if user is None:
        raise NotFound(f"no staff user {username!r}")
    return user


def list_users(session: Session) -> list[StaffUser]:
    return list(session.scalars(select(StaffUser).order_by(StaffUser.username)))


def principal_for(user: StaffUser, via: str, csrf_token: str | None = None) -> Principal:
    return Principal(user.id, user.username, Role(user.role), user.display_name, user.region_code, via, csrf_token)


def create_user(
    session: Session,
    username: str,
    password: str,
    role: str,
    *,
    display_name: str = "",
    region_code: str | None = None,
    actor: str,
    actor_role: str,
    client_addr: str = "",
) -> StaffUser:
    username = username.strip()
    if not username or len(username) > 64 or any(c.isspace() for c in username):
        raise LifecertError("username must be 1-64 characters without spaces", code=ErrorCode.BAD_REQUEST)
    r = parse_role(role)
    _check_password_rules(password)
    if session.scalars(select(StaffUser).where(StaffUser.username == username)).first() is not None:
        raise Conflict(f"staff user {username!r} already exists")
    user = StaffUser(
        username=username, display_name=display_name or username, role=str(r), password_hash=hash_password(password),
        region_code=region_code, active=True,
    )
    session.add(user)
    session.flush()
    audit.record(session, actor=actor, role=actor_role, action="user.create", object_type="staff_user",
                 object_id=user.id, client_addr=client_addr, detail={"username": username, "role": str(r)})
    return user


def _revoke_all(session: Session, user_id: int) -> None:
    now = utcnow()
    session.execute(
        update(StaffSession).where(StaffSession.user_id == user_id, StaffSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    session.execute(
        update(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None)).values(revoked_at=now)
    )


def disable_user(session: Session, username: str, *, actor: str, actor_role: str, client_addr: str = "") -> StaffUser:
    """Disable an account and end its sessions and tokens. The last active administrator cannot be
    disabled (nobody could manage accounts any more): CONFLICT."""
    user = get_user(session, username)
    if user.role == Role.ADMIN and user.active:
        # Row locks on PostgreSQL (ignored by SQLite, whose writers are serialised anyway), so two admins
        # disabling each other at once cannot both succeed.
        admins = session.scalars(select(StaffUser.id).where(
            StaffUser.role == str(Role.ADMIN), StaffUser.active.is_(True)).with_for_update()).all()
        if len(admins) <= 1:
            raise Conflict("the last active administrator cannot be disabled; create another admin first")
    user.active = False
    _revoke_all(session, user.id)
    audit.record(session, actor=actor, role=actor_role, action="user.disable", object_type="staff_user",
                 object_id=user.id, client_addr=client_addr, detail={"username": username})
    return user


def reset_password(
    session: Session, username: str, new_password: str, *, actor: str, actor_role: str, client_addr: str = ""
) -> StaffUser:
    """Set a new password, re-enable the account, clear lockouts and end all its sessions and tokens."""
    user = get_user(session, username)
    _check_password_rules(new_password)
    user.password_hash = hash_password(new_password)
    user.active = True
    _revoke_all(session, user.id)
    # startswith(autoescape=True): a '%' or '_' in a username must not clear other users' lockouts.
    keys = LoginThrottle.key.startswith(_pair_prefix(username), autoescape=True) | (
        LoginThrottle.key == _user_key(username))
    for row in session.scalars(select(LoginThrottle).where(keys)):
        session.delete(row)
    audit.record(session, actor=actor, role=actor_role, action="user.reset_password", object_type="staff_user",
                 object_id=user.id, client_addr=client_addr, detail={"username": username})
    return user


# --- authentication ---------------------------------------------------------------------------


class LoginLocked(LifecertError):
    code = ErrorCode.RATE_LIMITED


def _pair_prefix(username: str) -> str:
    return f"p|{username[:64]}|"


def _pair_key(username: str, client_addr: str) -> str:
    return f"{_pair_prefix(username)}{client_addr[:64]}"


def _user_key(username: str) -> str:
    return f"u|{username[:64]}"


def _client_key(client_addr: str) -> str:
    return f"c|{client_addr[:64]}"


def _insert_ignore(session: Session, key: str, now: datetime) -> None:
    values = {"key": key, "failures": 0, "window_start": now, "locked_until": None}
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        session.execute(pg_insert(LoginThrottle).values(**values).on_conflict_do_nothing(index_elements=["key"]))
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(sqlite_insert(LoginThrottle).values(**values).on_conflict_do_nothing(index_elements=["key"]))


def _throttle_rows(session: Session, username: str, client_addr: str, policy: LoginPolicy
                   ) -> list[tuple[str, int, LoginThrottle | None]]:
    """(key, failure limit, row or None) for the pair, the user and the client address."""
    out = []
    for key, limit in ((_pair_key(username, client_addr), policy.max_failures),
                       (_user_key(username), policy.max_failures_per_user),
                       (_client_key(client_addr), policy.max_failures_per_client)):
        out.append((key, limit, session.get(LoginThrottle, key)))
    return out


@dataclass(frozen=True)
class LoginOutcome:
    """Result of a login attempt. Failures are returned, not raised, so that the caller commits the
    failure counter and the audit row before reporting the error."""

    user: StaffUser | None
    error: LifecertError | None = None

    @property
    def ok(self) -> bool:
        return self.user is not None and self.error is None

    def user_or_raise(self) -> StaffUser:
        if self.error is not None or self.user is None:
            raise self.error or LifecertError("wrong username or password", code=ErrorCode.UNAUTHENTICATED)
        return self.user


def authenticate(
    session: Session,
    username: str,
    password: str,
    client_addr: str,
    *,
    policy: LoginPolicy = DEFAULT_LOGIN_POLICY,
    now: datetime | None = None,
) -> LoginOutcome:
    """Check a password. Fails with :class:`LoginLocked` (RATE_LIMITED, ``retry_after`` seconds) during a
    lockout and UNAUTHENTICATED on a wrong name/password or a disabled account (same message)."""
    now = now or utcnow()
    rows = _throttle_rows(session, username, client_addr, policy)
    # What the audit trail may keep of the typed name: an existing account's name, never a string that
    # matches no account (people type their password into the username field).
    user = session.scalars(select(StaffUser).where(StaffUser.username == username)).first()
    shown = user.username if user is not None else "-"
    locked_until = max((u for u in (_aware(th.locked_until) for _, _, th in rows if th is not None)
                        if u is not None), default=None)
    if locked_until is not None and locked_until > now:
        retry = int((locked_until - now).total_seconds()) + 1
        audit.record(session, actor=shown, role="anonymous", action="login.locked",
                     object_type="staff_user", object_id=user.id if user is not None else "-", client_addr=client_addr,
                     detail={} if user is not None else {"unknown_username": True})
        return LoginOutcome(None, LoginLocked("too many failed logins; try again later", retry_after=retry))

    ok = False
    if user is not None:
        try:
            ok = _hasher().verify(user.password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
    else:
        # Spend the same time as a real check so that timing does not reveal which names exist.
        with contextlib.suppress(VerifyMismatchError, VerificationError, InvalidHashError):
            _hasher().verify(_dummy_hash(), password)
    if ok and user is not None and user.active:
        if rows[0][2] is not None:  # a bulk DELETE: a concurrent success may have removed it already
            session.execute(delete(LoginThrottle).where(LoginThrottle.key == rows[0][0]))
            # the user and client counters run out by themselves (window)
        if _hasher().check_needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        audit.record(session, actor=user.username, role=user.role, action="login.success", object_type="staff_user",
                     object_id=user.id, client_addr=client_addr)
        return LoginOutcome(user)

    locked = False
    for key, limit, _ in rows:
        # Concurrent failures share these rows (the address and user keys above all): create them with
        # INSERT ... ON CONFLICT DO NOTHING, then re-read under a row lock (PostgreSQL) / the write lock
        # the insert took (SQLite), so no two requests insert the same key or lose an increment.
        _insert_ignore(session, key, now)
        th = session.scalars(select(LoginThrottle).where(LoginThrottle.key == key).with_for_update()
                             .execution_options(populate_existing=True)).one()
        if now - (_aware(th.window_start) or now) > policy.window:
            th.failures = 0
            th.window_start = now
        th.failures += 1
        if th.failures >= limit:
            th.locked_until = now + policy.lockout
            th.failures = 0
            th.window_start = now
            locked = True
    session.flush()
    detail: dict[str, object] = {"locked": locked, "disabled": bool(user is not None and ok and not user.active)}
    if user is None:
        detail["unknown_username"] = True
    audit.record(session, actor=shown, role="anonymous", action="login.failure",
                 object_type="staff_user", object_id=user.id if user is not None else "-", client_addr=client_addr,
                 detail=detail)
    if locked:
        return LoginOutcome(None, LoginLocked("too many failed logins; try again later",
                                              retry_after=int(policy.lockout.total_seconds())))
    return LoginOutcome(None, LifecertError("wrong username or password", code=ErrorCode.UNAUTHENTICATED))


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


# --- console sessions -------------------------------------------------------------------------


def open_session(
    session: Session, user: StaffUser, client_addr: str, *, policy: SessionPolicy = DEFAULT_SESSION_POLICY
) -> tuple[str, StaffSession]:
    """Start a console session; returns the raw token (for the cookie) and the stored row."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = StaffSession(
        token_hash=_token_hash(token), user_id=user.id, csrf_token=secrets.token_urlsafe(32),
        client_addr=client_addr[:64], created_at=now, last_seen_at=now, expires_at=now + policy.absolute,
    )
    session.add(row)
    session.flush()
    return token, row


def resolve_session(
    session: Session, token: str, *, policy: SessionPolicy = DEFAULT_SESSION_POLICY, now: datetime | None = None
) -> Principal:
    now = now or utcnow()
    row = session.get(StaffSession, _token_hash(token))
    if (row is None or row.revoked_at is not None or (_aware(row.expires_at) or now) <= now
            or now - (_aware(row.last_seen_at) or now) > policy.idle):
        raise LifecertError("please log in", code=ErrorCode.UNAUTHENTICATED)
    user = session.get(StaffUser, row.user_id)
    if user is None or not user.active:
        raise LifecertError("please log in", code=ErrorCode.UNAUTHENTICATED)
    # Touch at most once a minute, so page views do not each write.
    if now - (_aware(row.last_seen_at) or now) > timedelta(minutes=1):
        row.last_seen_at = now
    return principal_for(user, "session", row.csrf_token)


def end_session(session: Session, token: str) -> None:
    row = session.get(StaffSession, _token_hash(token))
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()


def csrf_matches(expected: str | None, given: str | None) -> bool:
    # Bytes: compare_digest refuses str with non-ASCII characters (a TypeError, i.e. a 500, found by fuzzing).
    return bool(expected) and bool(given) and hmac.compare_digest(
        str(expected).encode("utf-8", "surrogatepass"), str(given).encode("utf-8", "surrogatepass"))


# --- API tokens -------------------------------------------------------------------------------


def create_api_token(
    session: Session, username: str, *, name: str = "", ttl: timedelta | None = timedelta(days=90),
    actor: str, actor_role: str, client_addr: str = "",
) -> tuple[str, ApiToken]:
    """Issue a bearer token; the raw value is returned once and never stored."""
    user = get_user(session, username)
    if not user.active:
        raise AccessDenied(f"staff user {username!r} is disabled")
    raw = "lct_" + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, name=name[:64], token_hash=_token_hash(raw),
                   expires_at=(utcnow() + ttl) if ttl else None)
    session.add(row)
    session.flush()
    audit.record(session, actor=actor, role=actor_role, action="token.create", object_type="staff_user",
                 object_id=user.id, client_addr=client_addr, detail={"token_id": row.id, "name": name[:64]})
    return raw, row


def resolve_api_token(session: Session, raw: str, *, now: datetime | None = None) -> Principal:
    now = now or utcnow()
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == _token_hash(raw))).first()
    expires = _aware(row.expires_at) if row is not None else None
    if row is None or row.revoked_at is not None or (expires is not None and expires <= now):
        raise LifecertError("invalid or expired API token", code=ErrorCode.UNAUTHENTICATED)
    user = session.get(StaffUser, row.user_id)
    if user is None or not user.active:
        raise LifecertError("invalid or expired API token", code=ErrorCode.UNAUTHENTICATED)
    last_used = _aware(row.last_used_at)
    if last_used is None or now - last_used > timedelta(minutes=5):
        row.last_used_at = now
    return principal_for(user, "token")


def username_of(session: Session, user_id: int) -> str | None:
    """The username of staff account ``user_id`` (None when there is none)."""
    return session.scalar(select(StaffUser.username).where(StaffUser.id == user_id))
