"""Users, the areas they may act in, and their API tokens.

The core's tables (areas, registry, visits, ...) live in ``sync.models``; importing this
module registers them too, so Alembic sees one complete metadata.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import ForeignKey, String, UniqueConstraint, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

import sync.models  # noqa: F401  (registers the core's tables on the shared metadata)
from sync.db import Base, UTCDateTime, utcnow

ROLES = ("enumerator", "supervisor", "admin", "pemantau")
# The roles that work on families (field work, review, administration). ``pemantau``
# (monitoring, Bappeda or Dinas Sosial) sees only aggregates of their areas: an API operation
# or page is theirs only where it names the role (``login_required(..., "pemantau")``).
STAFF_ROLES = ("enumerator", "supervisor", "admin")

# Werkzeug's scrypt by default; the test suite sets a cheap method (PASSWORD_HASH_METHOD) so
# that hundreds of logins do not cost minutes. Checking works whatever method made the hash.
PASSWORD_HASH_METHOD = "scrypt"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    area_links: Mapped[list[UserArea]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def areas(self) -> list[str]:
        return sorted(link.area_code for link in self.area_links)

    def set_password(self, password: str) -> None:
        # Werkzeug's default is scrypt, salted; the plain password is never stored.
        self.password_hash = generate_password_hash(password, method=PASSWORD_HASH_METHOD)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def covers(self, area_code: str | None) -> bool:
        """Whether this user may act in ``area_code`` (an area or any area below it)."""
        if self.role == "admin":
            return True
        if not area_code:
            return False
        return any(area_code == a or area_code.startswith(a + ".") for a in self.areas)

    def __repr__(self) -> str:
        return f"<User {self.username} {self.role}>"


class UserArea(Base):
    """An area a user may act in; a kecamatan covers every kelurahan inside it."""

    __tablename__ = "user_areas"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    area_code: Mapped[str] = mapped_column(ForeignKey("areas.code"), primary_key=True)

    user: Mapped[User] = relationship(back_populates="area_links")


def hash_token(token: str) -> str:
    """Tokens carry 256 bits of randomness, so an unsalted SHA-256 is enough to store them."""
    return hashlib.sha256(token.encode()).hexdigest()


class ApiToken(Base):
    """An opaque bearer token, stored only as its hash, bound to one device."""

    __tablename__ = "api_tokens"
    __table_args__ = (UniqueConstraint("token_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    device_id: Mapped[str] = mapped_column(String(128), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(lazy="joined")

    @classmethod
    def issue(
        cls, session: Session, user: User, device_id: str, ttl_seconds: int
    ) -> tuple[str, ApiToken]:
        """Create a token; the plain value is returned once and never stored."""
        plain = secrets.token_urlsafe(32)
        token = cls(
            token_hash=hash_token(plain),
            user=user,
            device_id=device_id,
            expires_at=utcnow() + dt.timedelta(seconds=ttl_seconds),
        )
        session.add(token)
        return plain, token

    @classmethod
    def find_valid(cls, session: Session, plain: str) -> ApiToken | None:
        token = session.scalar(select(cls).where(cls.token_hash == hash_token(plain)))
        if token is None or token.revoked_at is not None or token.expires_at <= utcnow():
            return None
        if not token.user.active:
            return None
        return token

    @classmethod
    def revoke_where(
        cls, session: Session, *, user_id: int | None = None, device_id: str | None = None
    ) -> int:
        """Revoke every live token of a user, of a device, or of a user's device."""
        stmt = update(cls).where(cls.revoked_at.is_(None)).values(revoked_at=utcnow())
        if user_id is not None:
            stmt = stmt.where(cls.user_id == user_id)
        if device_id is not None:
            stmt = stmt.where(cls.device_id == device_id)
        return session.execute(stmt).rowcount
