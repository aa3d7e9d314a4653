"""The one route without a credential: anyone holding a certificate may check it is genuine.

It answers what the certificate itself shows, with the holder's name masked, and never a member
id. Built to sit behind a rate limiter and a cache: a plain GET whose answer depends only on the
path; a mistyped number (the check character catches any single typo or swap) is answered without
touching the database, so guessing costs the service next to nothing; every answer, refusals
included, says how long a cache may keep it (a certificate, once issued, never changes).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Response

from services.training import handlers
from services.training.api import Uow
from services.training.certificates import read_certificate_number, verify_certificate
from services.training.commands import fields_renamed
from services.training.views import CertificateVerification
from shared.errors import DomainError, NotFound
from shared.http import problem
from shared.http import router as new_router

router = new_router()
GENUINE_MAX_AGE = 86_400
# Short: a certificate issued a minute ago must not stay "unknown" in a cache for long.
NOT_FOUND_MAX_AGE = 60
# A malformed number never becomes a certificate number.
MALFORMED_MAX_AGE = 86_400


def _cache_for(response: Response, seconds: int) -> Response:
    response.headers["Cache-Control"] = f"public, max-age={seconds}"
    return response


@router.get(
    "/certificates/{number}/verification",
    tags=["certificates"],
    summary="Check that a certificate is genuine (no credential needed)",
    response_model=CertificateVerification,
)
async def verify(
    number: Annotated[
        str,
        Path(
            min_length=1,
            max_length=40,
            description="As printed on the certificate; spaces, hyphens and case do not matter.",
            examples=["GH-7KQ3-M9XA-PR4"],
        ),
    ],
    response: Response,
    u: Uow,
) -> Any:
    """Anyone (an employer, a member, the public) checks a certificate number: 200 with what the
    certificate shows, the holder's name masked (`张*`). Open by design: no signature, no scope.

    Errors: 404 `unknown_certificate` on `number` (well-formed, but no certificate has it: check
    it against the certificate); 422 on `number`: `malformed` (not a certificate number at all)
    or `check_character_mismatch` (a typo: a character wrong or two swapped). Every answer
    carries `Cache-Control`: a day for genuine and malformed numbers, a minute for unknown
    ones."""
    try:
        with fields_renamed({"certificate_number": "number"}):
            canonical = read_certificate_number(number)  # refused without a lookup
            found = await handlers.certificate(canonical, u)
            verification = verify_certificate(canonical, found)
    except DomainError as refusal:
        error = {"field": refusal.field, "code": refusal.code, "message": refusal.message}
        refused = problem(refusal.status, refusal.title, [error])
        max_age = NOT_FOUND_MAX_AGE if isinstance(refusal, NotFound) else MALFORMED_MAX_AGE
        return _cache_for(refused, max_age)
    _cache_for(response, GENUINE_MAX_AGE)
    return CertificateVerification.model_validate(verification)
