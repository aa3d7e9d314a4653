"""One pattern for a service's routes: the dependencies every route takes, and the action route.

Every service's ``api`` modules declare routes on ``shared.http.router()`` and take their
dependencies from here:

- ``Pool`` for reads (views and searches read on a pooled connection, no unit of work);
- a unit of work from ``unit_of_work``: ``build()`` calls :func:`wire`, and each service names
  the type once, ``Uow = Annotated[MembershipUnitOfWork, Depends(unit_of_work)]``;
- ``Today`` for reads that depend on the federation's day.

An *action* acts on one thing the URL names and answers that thing as it is now, e.g.
``POST /claims/{claim_id}/approve``. :func:`action` declares one from four parts (the command, the
handler, the scope, the answer), so every action of every service is built alike: the caller is
admitted, the body validated into the command, the thing's id (and the acting department, for
commands that record who acted) put into the command, the handler run as ``handler(cmd, uow)``,
and the answer read afresh.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from datetime import date
from typing import Annotated, Any, TypeVar

import asyncpg
from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel

from shared.auth import Caller, require_scope
from shared.clock import Clock
from shared.inputs import Command
from shared.uow import UnitOfWork

M = TypeVar("M", bound=BaseModel)
C = TypeVar("C", bound=Command)
U = TypeVar("U", bound=UnitOfWork)


# Dependencies are coroutines: FastAPI runs a plain function in a worker thread, per request.
async def pool(request: Request) -> asyncpg.Pool:
    return request.app.state.runtime.pool


async def unit_of_work(request: Request) -> UnitOfWork:
    new: Callable[[], UnitOfWork] = request.app.state.unit_of_work
    return new()


async def today(request: Request) -> date:
    """The federation's day, for reads that depend on it (who stands today, arrears to date)."""
    clock: Clock = request.app.state.clock
    return clock.today()


Pool = Annotated[asyncpg.Pool, Depends(pool)]
Today = Annotated[date, Depends(today)]


def wire(app: FastAPI, runtime: Any, kind: type[UnitOfWork], clock: Clock) -> None:
    """What a service's routes read from its app: the runtime (its pool), a unit of work per
    call and the clock. ``build()`` calls it once."""
    app.state.runtime = runtime
    app.state.clock = clock
    app.state.unit_of_work = units_of_work(runtime, kind, clock)


def units_of_work(runtime: Any, kind: type[U], clock: Clock) -> Callable[[], U]:
    """The factory ``build()`` keeps in ``app.state.unit_of_work``: one unit of work a call, on the
    runtime's pool (opened at start-up, after this is made), writing to the service's topic."""
    return lambda: kind(runtime.pool, runtime.settings.events_topic, clock)


# Both take the pool, the ids the path names (in the path's order) and the caller:
# ``answer(pool, claim_id, caller)``, ``answer(pool, class_id, member_id, caller)``.
Check = Callable[..., Awaitable[None]]
Answer = Callable[..., Awaitable[M]]


def action(
    router: APIRouter,
    path: str,
    *,
    command: type[C],
    handler: Callable[[C, Any], Awaitable[object]],
    uow: Any,
    scope: str,
    answer: Answer[M],
    response_model: type[M],
    summary: str,
    description: str,
    tags: list[str],
    name: str | None = None,
    method: str = "POST",
    status_code: int = 200,
    subject: Any = str,
    path_types: Mapping[str, Any] | None = None,
    may_act: Check | None = None,
    actor_field: str | None = None,
) -> None:
    """Declare ``METHOD path``: an action on the one thing the path's parameters name.

    Each path parameter fills the command field of the same name; ``subject`` is their type (with
    its length limit and example), ``path_types`` a parameter's own. ``may_act(pool, *ids, caller)``
    refuses (403/404) before anything changes; ``actor_field`` names the command field that
    records which department acted (the caller's app id, never taken from the body). A command
    whose every field the route fills (``POST /plans/{plan_id}/publish``) takes no body.
    """
    params = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    if not params:
        raise ValueError(f"an action names the thing it acts on in its path: {path!r}")
    types = {p: (path_types or {}).get(p, subject) for p in params}
    for field in (*params, actor_field):
        if field is not None and field not in command.model_fields:
            raise ValueError(f"{command.__name__} has no field {field!r} for {path!r}")

    async def act(**given: Any) -> M:
        ids = [given[p] for p in params]
        db: asyncpg.Pool = given["pool"]
        caller: Caller = given["caller"]
        if may_act is not None:
            await may_act(db, *ids, caller)
        filled: dict[str, str] = dict(zip(params, ids, strict=True))
        if actor_field is not None:
            filled[actor_field] = caller.app_id
        cmd = given["cmd"] if bodied else command()
        await handler(cmd.about(**filled), given["uow"])
        return await answer(db, *ids, caller)

    bodied = bool(set(command.model_fields) - command.route_fields())
    keyword = inspect.Parameter.KEYWORD_ONLY
    body = [inspect.Parameter("cmd", keyword, annotation=command)] if bodied else []
    act.__signature__ = inspect.Signature(  # type: ignore[attr-defined]  # read by FastAPI
        [
            *(inspect.Parameter(p, keyword, annotation=types[p]) for p in params),
            *body,
            inspect.Parameter("uow", keyword, annotation=uow),
            inspect.Parameter("pool", keyword, annotation=Pool),
            inspect.Parameter(
                "caller", keyword, annotation=Caller, default=Depends(require_scope(scope))
            ),
        ],
        return_annotation=response_model,
    )
    router.add_api_route(
        path,
        act,
        methods=[method],
        status_code=status_code,
        name=name or handler.__name__,
        response_model=response_model,
        summary=summary,
        description=description,
        tags=list(tags),
    )
