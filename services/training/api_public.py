"""The one route without a credential: anyone holding a certificate may check it is genuine.

It answers what the certificate itself shows, with the holder's name masked, and never a member
id. Built to sit behind a rate limiter and a cache: a plain GET whose answer depends only on the
path; a mistyped number (the check character catches any single typo or swap) is answered without
touching the database, so guessing costs the service next to nothing; answers say how long a cache
may keep them (a certificate, once issued, never changes).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response

from services.training import handlers
from services.training.certificates import read_certificate_number, verify_certificate
from services.training.errors import DomainError
from services.training.unit_of_work import TrainingUnitOfWork
from services.training.views import verification_view

router = APIRouter()
GENUINE_MAX_AGE = 86_400
# Short: a certificate issued a minute ago must not stay "unknown" in a cache for long.
NOT_FOUND_MAX_AGE = 60


def uow(request: Request) -> TrainingUnitOfWork:
    runtime = request.app.state.runtime
    return TrainingUnitOfWork(runtime.pool, runtime.settings.events_topic)


@router.get("/certificates/{number}/verification", tags=["certificates"])
async def verify(
    number: Annotated[str, Path(min_length=1, max_length=40)],
    response: Response,
    u: Annotated[TrainingUnitOfWork, Depends(uow)],
) -> dict[str, Any]:
    try:
        canonical = read_certificate_number(number)
    except DomainError:
        found = None  # cannot be genuine: the domain answers why, without a lookup
    else:
        found = await handlers.certificate(canonical, u)
    verification = verify_certificate(number, found)
    max_age = GENUINE_MAX_AGE if verification.genuine else NOT_FOUND_MAX_AGE
    response.headers["Cache-Control"] = f"public, max-age={max_age}"
    return verification_view(verification)
