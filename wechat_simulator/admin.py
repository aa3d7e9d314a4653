"""The simulator's own API under ``/_sim``: set up users and templates, inject faults, move the
clock, and inspect what was delivered. Not part of WeChat; tests and the run scripts drive it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from .config import SubscriptionName, TemplateSpec, UserSpec, UserStateName
from .faults import Faults, ForcedError

if TYPE_CHECKING:
    from .app import Simulator

router = APIRouter(prefix="/_sim", tags=["simulator"])


def _sim(request: Request) -> Simulator:
    sim: Simulator = request.app.state.simulator
    return sim


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResetRequest(_Strict):
    keep_clock: bool = False


class UsersRequest(_Strict):
    """Create or update users: a list, one user given inline, and/or ``generate`` numbered ones."""

    users: list[UserSpec] = Field(default_factory=list)
    openid: str | None = None
    state: UserStateName = "following"
    subscription: SubscriptionName | None = None
    generate: int = Field(default=0, ge=0, le=2_000_000)
    prefix: str = "oSimUser"
    # Push subscribe events for new followers (off by default: seeding is not following).
    notify: bool = False
    # Leave the generated openids out of the answer (large seeds).
    quiet: bool = False


class UserStateRequest(_Strict):
    state: UserStateName | None = None
    subscription: SubscriptionName | None = None
    notify: bool = True


class TemplatesRequest(_Strict):
    templates: list[TemplateSpec]


class OpenidErrorSpec(_Strict):
    openid: str
    # 0 removes the forced error for the openid.
    errcode: int
    errmsg: str | None = None
    # None: persistent; else the next ``count`` sends to the openid fail.
    count: int | None = Field(default=None, ge=1)


class FaultsRequest(_Strict):
    """A partial update: fields left out keep their current value."""

    latency_ms: float | None = Field(default=None, ge=0)
    system_errors: int | None = Field(default=None, ge=0)
    system_error_paths: list[str] | None = None
    persistent_40001: bool | None = None
    openid_errors: list[OpenidErrorSpec] | None = None
    clear_openid_errors: bool = False
    delivery_failures: int | None = Field(default=None, ge=0)
    delivery_fail_openids: list[str] | None = None


class AdvanceRequest(_Strict):
    seconds: float = Field(ge=0)


@router.get("/health")
async def health(request: Request) -> dict[str, Any]:
    sim = _sim(request)
    return {"status": "ok", "appid": sim.state.config.appid, "now": sim.clock.now()}


@router.post("/reset")
async def reset(request: Request, body: ResetRequest | None = None) -> dict[str, Any]:
    sim = _sim(request)
    sim.reset(keep_clock=body.keep_clock if body else False)
    return {"status": "reset", "now": sim.clock.now()}


@router.get("/config")
async def get_config(request: Request) -> dict[str, Any]:
    return _sim(request).state.config.settings()


@router.post("/config")
async def update_config(request: Request, patch: dict[str, Any]) -> dict[str, Any]:
    sim = _sim(request)
    try:
        config = sim.state.update_config(patch)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise HTTPException(status_code=422, detail=str(exc)) from None
    return config.settings()


@router.post("/users")
async def create_users(request: Request, body: UsersRequest) -> dict[str, Any]:
    state = _sim(request).state
    specs = list(body.users)
    if body.openid is not None:
        specs.append(UserSpec(openid=body.openid, state=body.state, subscription=body.subscription))
    openids: list[str] = []
    events = 0
    for spec in specs:
        _, event = state.put_user(spec, notify=body.notify)
        openids.append(spec.openid)
        events += event is not None
    for index in range(body.generate):
        openid = f"{body.prefix}{index:08d}"
        _, event = state.put_user(
            UserSpec(openid=openid, state=body.state, subscription=body.subscription),
            notify=body.notify,
        )
        openids.append(openid)
        events += event is not None
    result: dict[str, Any] = {
        "created": len(openids),
        "events_queued": events,
        "counts": state.followers.counts(),
    }
    if not body.quiet:
        result["openids"] = openids
    return result


@router.get("/users")
async def list_users(
    request: Request,
    state: str | None = None,
    limit: int = Query(default=1000, ge=0, le=100_000),
) -> dict[str, Any]:
    sim_state = _sim(request).state
    users: list[dict[str, Any]] = []
    for user in sim_state.followers.all():
        if len(users) >= limit:
            break
        if state is None or user.state == state or user.subscription == state:
            users.append(user.to_json())
    return {"counts": sim_state.followers.counts(), "users": users}


@router.get("/users/{openid}")
async def get_user(request: Request, openid: str) -> dict[str, Any]:
    user = _sim(request).state.followers.get(openid)
    if user is None:
        raise HTTPException(status_code=404, detail=f"unknown openid {openid}")
    return user.to_json()


def _change_state(
    request: Request,
    openid: str,
    state: UserStateName | None,
    subscription: SubscriptionName | None,
    notify: bool,
) -> dict[str, Any]:
    try:
        user, event = _sim(request).state.set_user_state(openid, state, subscription, notify=notify)
    except KeyError:
        raise HTTPException(status_code=404, detail=f"unknown openid {openid}") from None
    return {**user.to_json(), "event": event}


@router.post("/users/{openid}/state")
async def set_user_state(request: Request, openid: str, body: UserStateRequest) -> dict[str, Any]:
    return _change_state(request, openid, body.state, body.subscription, body.notify)


@router.post("/users/{openid}/{action}")
async def user_action(
    request: Request,
    openid: str,
    action: Literal["follow", "unfollow", "block", "unblock", "refuse", "accept"],
    notify: bool = True,
) -> dict[str, Any]:
    state: UserStateName | None
    subscription: SubscriptionName | None = None
    if action in ("follow", "unblock"):
        state = "following"
    elif action == "unfollow":
        state = "unfollowed"
    elif action == "block":
        state = "blocked"
    else:
        state, subscription = None, "refused" if action == "refuse" else "accepted"
    return _change_state(request, openid, state, subscription, notify)


@router.post("/templates")
async def put_templates(request: Request, body: TemplatesRequest | TemplateSpec) -> dict[str, Any]:
    state = _sim(request).state
    specs = body.templates if isinstance(body, TemplatesRequest) else [body]
    return {"templates": [state.put_template(spec).to_json() for spec in specs]}


@router.get("/templates")
async def list_templates(request: Request) -> dict[str, Any]:
    return {"templates": [t.to_json() for t in _sim(request).state.templates.all()]}


@router.delete("/templates/{template_id}")
async def delete_template(request: Request, template_id: str) -> dict[str, Any]:
    if not _sim(request).state.templates.delete(template_id):
        raise HTTPException(status_code=404, detail=f"unknown template {template_id}")
    return {"deleted": template_id}


@router.get("/faults")
async def get_faults(request: Request) -> dict[str, Any]:
    return _sim(request).state.faults.to_json()


@router.post("/faults")
async def set_faults(request: Request, body: FaultsRequest) -> dict[str, Any]:
    faults = _sim(request).state.faults
    if body.latency_ms is not None:
        faults.latency_ms = body.latency_ms
    if body.system_errors is not None:
        faults.system_errors = body.system_errors
    if body.system_error_paths is not None:
        faults.system_error_paths = frozenset(body.system_error_paths)
    if body.persistent_40001 is not None:
        faults.persistent_40001 = body.persistent_40001
    if body.clear_openid_errors:
        faults.openid_errors.clear()
    for spec in body.openid_errors or ():
        if spec.errcode == 0:
            faults.openid_errors.pop(spec.openid, None)
        else:
            faults.openid_errors[spec.openid] = ForcedError(spec.errcode, spec.errmsg, spec.count)
    if body.delivery_failures is not None:
        faults.delivery_failures = body.delivery_failures
    if body.delivery_fail_openids is not None:
        faults.delivery_fail_openids = set(body.delivery_fail_openids)
    return faults.to_json()


@router.delete("/faults")
async def clear_faults(request: Request) -> dict[str, Any]:
    state = _sim(request).state
    state.faults = Faults()
    return state.faults.to_json()


@router.get("/clock")
async def get_clock(request: Request) -> dict[str, Any]:
    clock = _sim(request).clock
    return {"now": clock.now(), "offset": clock.offset}


@router.post("/clock/advance")
async def advance_clock(request: Request, body: AdvanceRequest) -> dict[str, Any]:
    clock = _sim(request).clock
    clock.advance(body.seconds)
    return {"now": clock.now(), "offset": clock.offset}


@router.get("/tokens")
async def list_tokens(request: Request) -> dict[str, Any]:
    state = _sim(request).state
    return {"tokens": state.tokens.to_json(state.clock.now())}


@router.get("/messages")
async def list_messages(
    request: Request,
    openid: str | None = None,
    template_id: str | None = None,
    kind: Literal["template", "subscribe"] | None = None,
    status: str | None = None,
    trace_id: str | None = None,
    since_id: int | None = None,
    limit: int = Query(default=100, ge=0, le=10_000),
) -> dict[str, Any]:
    return _sim(request).state.messages.query(
        openid=openid,
        template_id=template_id,
        kind=kind,
        status=status,
        trace_id=trace_id,
        since_id=since_id,
        limit=limit,
    )


@router.get("/messages/{msgid}")
async def get_message(request: Request, msgid: int) -> dict[str, Any]:
    record = _sim(request).state.messages.get(msgid)
    if record is None:
        raise HTTPException(status_code=404, detail=f"unknown msgid {msgid}")
    return record.to_json()


@router.get("/stats")
async def stats(request: Request) -> dict[str, Any]:
    sim = _sim(request)
    state = sim.state
    return {
        **state.stats.to_json(),
        "messages_stored": len(state.messages),
        "users": state.followers.counts(),
        "quota": state.quotas.to_json(state.clock.now(), state.config),
        "callbacks": sim.pusher.stats(),
    }


@router.post("/callbacks/flush")
async def flush_callbacks(
    request: Request, max_wait: float = Query(default=10.0, gt=0, le=300, alias="timeout")
) -> dict[str, Any]:
    pusher = _sim(request).pusher
    flushed = await pusher.flush(max_wait)
    return {"flushed": flushed, **pusher.stats()}
