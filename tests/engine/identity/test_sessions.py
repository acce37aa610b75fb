"""Sign-in against the database: passwords, throttling, expiry, sign-out and CSRF."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from engine.errors import PermissionDenied
from engine.identity import accounts
from engine.identity.errors import NotAuthenticated, TooManyAttempts
from engine.identity.passwords import PasswordPolicy
from engine.identity.service import authenticate_session
from engine.identity.sessions import SignInPolicy, check_csrf, resolve_session, sign_in, sign_out
from engine.storage.uow import UnitOfWork

PASSWORD = "correct horse battery"
POLICY = SignInPolicy(
    passwords=PasswordPolicy(time_cost=1, memory_kib=8 * 1024),
    idle=timedelta(minutes=30),
    absolute=timedelta(hours=8),
    window=timedelta(minutes=15),
    max_failures_per_user=3,
    max_failures_per_client=5,
)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def uow(conn: sa.Connection, clock: Clock) -> Iterator[UnitOfWork]:
    with UnitOfWork(conn, clock=clock) as unit:
        accounts.create_user(
            uow=unit,
            actor=None,
            username="ann",
            display_name="Ann",
            password=PASSWORD,
            policy=POLICY.passwords,
        )
        yield unit


def _sign_in(
    uow: UnitOfWork, password: str = PASSWORD, *, client: str = "10.0.0.1", user: str = "ann"
):  # noqa: ANN202
    return sign_in(uow=uow, policy=POLICY, username=user, password=password, client=client)


def test_sign_in_opens_a_session_stored_hashed(uow: UnitOfWork) -> None:
    opened = _sign_in(uow)
    stored = uow.conn.execute(sa.text("SELECT token_hash, csrf_hash FROM auth_sessions")).one()
    assert opened.token not in stored and opened.csrf_token not in stored
    assert resolve_session(uow=uow, policy=POLICY, token=opened.token).user_id == opened.user_id
    assert [e.action for e in uow.audit.query(target_key="ann")][0] == "auth.login"


def test_wrong_password_unknown_user_and_disabled_user_fail_alike(uow: UnitOfWork) -> None:
    codes = set()
    for user, password in (("ann", "wrong password"), ("nobody", PASSWORD)):
        with pytest.raises(NotAuthenticated) as caught:
            _sign_in(uow, password, user=user)
        codes.add(caught.value.code)
    accounts.set_user_active(
        uow=uow, actor=None, user_id=uow.users.get_by_username(username="ann").id, active=False
    )
    with pytest.raises(NotAuthenticated) as caught:
        _sign_in(uow)
    codes.add(caught.value.code)
    assert codes == {"identity.bad-credentials"}
    assert [e.action for e in uow.audit.query(action="auth.login-failed")] != []


def test_unknown_user_takes_about_as_long_as_a_wrong_password(
    uow: UnitOfWork, clock: Clock
) -> None:
    """A dummy hash is verified for unknown users: timing does not reveal who exists."""
    heavy = SignInPolicy(passwords=PasswordPolicy(time_cost=2, memory_kib=32 * 1024))
    user_id = uow.users.get_by_username(username="ann").id
    uow.users.update(user_id=user_id, password_hash=heavy.passwords.hash(PASSWORD))

    def timed(user: str) -> float:
        clock.now += timedelta(hours=1)  # stay below the throttle
        started = time.perf_counter()
        with pytest.raises(NotAuthenticated):
            sign_in(uow=uow, policy=heavy, username=user, password="wrong", client=user)
        return time.perf_counter() - started

    known, unknown = [], []
    for _ in range(5):
        known.append(timed("ann"))
        unknown.append(timed("nobody"))
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.5 < ratio < 2.0


def test_throttle_per_username_then_retry_after(uow: UnitOfWork, clock: Clock) -> None:
    for _ in range(POLICY.max_failures_per_user):
        with pytest.raises(NotAuthenticated):
            _sign_in(uow, "wrong password")
    with pytest.raises(TooManyAttempts) as caught:
        _sign_in(uow)  # even the right password is refused while throttled
    assert 0 < caught.value.retry_after <= POLICY.window.total_seconds() + 1
    clock.now += POLICY.window + timedelta(seconds=1)
    assert _sign_in(uow).token


def test_throttle_per_client_address(uow: UnitOfWork) -> None:
    for index in range(POLICY.max_failures_per_client):
        with pytest.raises(NotAuthenticated):
            _sign_in(uow, "wrong", user=f"guess{index}", client="6.6.6.6")
    with pytest.raises(TooManyAttempts):
        _sign_in(uow, client="6.6.6.6")
    assert _sign_in(uow, client="10.0.0.2").token


def test_success_clears_the_username_failures(uow: UnitOfWork) -> None:
    for _ in range(POLICY.max_failures_per_user - 1):
        with pytest.raises(NotAuthenticated):
            _sign_in(uow, "wrong password")
    _sign_in(uow)
    with pytest.raises(NotAuthenticated):
        _sign_in(uow, "wrong password")
    assert _sign_in(uow).token


def test_idle_and_absolute_expiry(uow: UnitOfWork, clock: Clock) -> None:
    opened = _sign_in(uow)
    clock.now += POLICY.idle - timedelta(minutes=1)
    resolve_session(uow=uow, policy=POLICY, token=opened.token)  # moves the idle clock on
    clock.now += POLICY.idle - timedelta(minutes=1)
    resolve_session(uow=uow, policy=POLICY, token=opened.token)
    clock.now += POLICY.idle
    with pytest.raises(NotAuthenticated) as caught:
        resolve_session(uow=uow, policy=POLICY, token=opened.token)
    assert caught.value.code == "identity.session-expired"
    busy = _sign_in(uow)
    for _ in range(int(POLICY.absolute / timedelta(minutes=20)) + 1):
        clock.now += timedelta(minutes=20)
        try:
            resolve_session(uow=uow, policy=POLICY, token=busy.token)
        except NotAuthenticated:
            break
    else:
        pytest.fail("the absolute lifetime did not end the session")
    assert clock.now - busy.expires_at < timedelta(minutes=20)


def test_sign_out_ends_the_session_and_new_sign_in_gets_a_new_id(uow: UnitOfWork) -> None:
    first = _sign_in(uow)
    second = sign_in(
        uow=uow,
        policy=POLICY,
        username="ann",
        password=PASSWORD,
        client="x",
        previous_token=first.token,
    )
    assert second.token != first.token and second.session_id != first.session_id
    with pytest.raises(NotAuthenticated):  # the fixed session was ended at sign-in
        resolve_session(uow=uow, policy=POLICY, token=first.token)
    assert sign_out(uow=uow, token=second.token)
    assert not sign_out(uow=uow, token=second.token)
    with pytest.raises(NotAuthenticated):
        resolve_session(uow=uow, policy=POLICY, token=second.token)


def test_csrf_is_checked_on_unsafe_requests_only(uow: UnitOfWork) -> None:
    opened = _sign_in(uow)
    session = resolve_session(uow=uow, policy=POLICY, token=opened.token)
    check_csrf(session, opened.csrf_token)
    for forged in (None, "", opened.token, opened.csrf_token + "x"):
        with pytest.raises(PermissionDenied) as caught:
            check_csrf(session, forged)
        assert caught.value.code == "identity.csrf-failed"
    args = {"uow": uow, "policy": POLICY, "token": opened.token, "csrf_token": None}
    assert authenticate_session(**args, unsafe=False).actor.username == "ann"
    with pytest.raises(PermissionDenied):
        authenticate_session(**args, unsafe=True)


def test_password_rehash_on_parameter_change(uow: UnitOfWork) -> None:
    old = uow.users.get_by_username(username="ann").password_hash
    stronger = SignInPolicy(passwords=PasswordPolicy(time_cost=2, memory_kib=8 * 1024))
    sign_in(uow=uow, policy=stronger, username="ann", password=PASSWORD, client="x")
    new = uow.users.get_by_username(username="ann").password_hash
    assert new != old and new is not None and "t=2" in new


def test_disabling_a_user_ends_their_sessions(uow: UnitOfWork) -> None:
    opened = _sign_in(uow)
    user_id = uow.users.get_by_username(username="ann").id
    accounts.set_user_active(uow=uow, actor=None, user_id=user_id, active=False)
    with pytest.raises(NotAuthenticated):
        resolve_session(uow=uow, policy=POLICY, token=opened.token)
