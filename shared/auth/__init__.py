"""Department-system integration: signed requests, scoped credentials, an audit trail.

Endpoints declare the scope they need next to themselves::

    @router.post("/claims/{claim_id}/review")
    async def review(claim_id: str, caller: Caller = Depends(require_scope("claims:review"))):
        caller.ensure_organisation(claim.organisation_id)

:data:`DDL` creates the tables in the service's own schema (its first migration runs it).
Signing is described in :mod:`shared.auth.signing` and docs/departments.md.
"""

from shared.auth import audit, credentials
from shared.auth.dependency import SCHEME, Caller, require_scope

DDL = credentials.DDL + audit.DDL

__all__ = ["DDL", "SCHEME", "Caller", "require_scope"]
