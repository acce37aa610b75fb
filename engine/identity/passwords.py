"""Password hashing with argon2id; hashes made with older parameters are upgraded at sign-in."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 8


@dataclass(frozen=True, slots=True)
class PasswordPolicy:
    """argon2id cost parameters. Verifying an unknown user checks a dummy hash of the same cost
    so that "no such user" and "wrong password" take about as long."""

    time_cost: int = 3
    memory_kib: int = 64 * 1024
    _hasher: PasswordHasher = field(init=False, repr=False, compare=False)
    _dummy: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        hasher = PasswordHasher(time_cost=self.time_cost, memory_cost=self.memory_kib)
        object.__setattr__(self, "_hasher", hasher)
        object.__setattr__(self, "_dummy", hasher.hash(secrets.token_urlsafe(16)))

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> tuple[bool, str | None]:
        """Check `password` against `stored` (None: a dummy hash is checked, and fails).

        Returns (matches, new hash when the stored one used other parameters, else None).
        """
        try:
            self._hasher.verify(stored or self._dummy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False, None
        if stored is None:
            return False, None
        return True, self.hash(password) if self._hasher.check_needs_rehash(stored) else None


def generate_password() -> str:
    """A random password for a new account (about 120 bits), printed once."""
    return secrets.token_urlsafe(15)


def is_acceptable(password: str) -> bool:
    return len(password) >= MIN_LENGTH


__all__ = ["MIN_LENGTH", "PasswordPolicy", "generate_password", "is_acceptable"]
