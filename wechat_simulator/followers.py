"""The account's users: who follows, who unfollowed or blocked it, who refused subscription
messages, and which follow change WeChat pushes as an event. Pure, no I/O."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from . import errors as e
from .config import SubscriptionName, UserSpec, UserStateName
from .errors import WeChatError

FollowState = Literal["following", "unfollowed", "blocked"]
SUBSCRIBE = "subscribe"
UNSUBSCRIBE = "unsubscribe"


@dataclass(frozen=True, slots=True)
class User:
    openid: str
    state: FollowState
    subscription: SubscriptionName

    def to_json(self) -> dict[str, Any]:
        return {"openid": self.openid, "state": self.state, "subscription": self.subscription}


def follow_event(previous: FollowState | None, new: FollowState) -> str | None:
    """The event WeChat pushes for a change of follow state, if any."""
    # Blocking ("refuse messages") is silent in WeChat; only follow/unfollow are pushed.
    if new == "unfollowed" and previous in ("following", "blocked"):
        return UNSUBSCRIBE
    if new == "following" and previous in (None, "unfollowed"):
        return SUBSCRIBE
    return None


Standing = tuple[FollowState, SubscriptionName]
# One shared tuple per (state, subscription): a benchmark's 300,000 auto-created followers cost
# their openid and a dict slot each (about 100 bytes), not a User object and its fields as well.
_STANDINGS: dict[Standing, Standing] = {}


def _standing(state: FollowState, subscription: SubscriptionName) -> Standing:
    key = (state, subscription)
    return _STANDINGS.setdefault(key, key)


class Followers:
    """openid -> standing; a :class:`User` is built when asked for."""

    def __init__(self) -> None:
        self._users: dict[str, Standing] = {}

    def put(self, spec: UserSpec) -> tuple[User, str | None]:
        """Create or update a user; returns it and the follow event its change would push."""
        # "refused" is a follower who refused subscription messages, not a follow state.
        state: FollowState = "following" if spec.state == "refused" else spec.state
        subscription = spec.subscription or ("refused" if spec.state == "refused" else "accepted")
        existing = self._users.get(spec.openid)
        self._users[spec.openid] = _standing(state, subscription)
        previous = existing[0] if existing is not None else None
        return User(spec.openid, state, subscription), follow_event(previous, state)

    def changed(
        self,
        openid: str,
        state: UserStateName | None,
        subscription: SubscriptionName | None,
    ) -> UserSpec:
        """The spec that changes an existing user (KeyError for an unknown openid): fields left
        out keep their value, and ``refused`` refuses subscription messages."""
        user = self.get(openid)
        if user is None:
            raise KeyError(openid)
        new_state = state or user.state
        if subscription is None:
            subscription = "refused" if new_state == "refused" else user.subscription
        return UserSpec(openid=openid, state=new_state, subscription=subscription)

    def recipient(self, touser: Any, *, auto_create: bool) -> User:
        """The user a send goes to; 40003 for a missing or unknown openid (unless the account
        treats unknown openids as followers, for load tests)."""
        if not isinstance(touser, str) or not touser:
            raise WeChatError(e.INVALID_OPENID)
        standing = self._users.get(touser)
        if standing is None:
            if not auto_create:
                raise WeChatError(e.INVALID_OPENID)
            standing = self._users[touser] = _standing("following", "accepted")
        return User(touser, *standing)

    def get(self, openid: str) -> User | None:
        standing = self._users.get(openid)
        return User(openid, *standing) if standing is not None else None

    def all(self) -> Iterator[User]:
        return (User(openid, *standing) for openid, standing in self._users.items())

    def counts(self) -> dict[str, int]:
        standings = Counter(self._users.values())
        counts: Counter[str] = Counter()
        refused = 0
        for (state, subscription), users in standings.items():
            counts[state] += users
            refused += users if subscription == "refused" else 0
        counts["subscription_refused"] = refused
        return {"total": len(self._users), **counts}
