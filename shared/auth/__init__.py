"""Department-system integration: signed requests, scoped credentials, an audit trail.

Endpoints declare the scope they need next to themselves::

    @router.post("/claims/{claim_id}/review")
    async def review(claim_id: str, caller: Caller = Depends(require_scope("claims:review"))):
        caller.ensure_organisation(claim.organisation_id)

Their tables are in each service's own schema (``shared.backbone_schema``).
Signing is described in :mod:`shared.auth.signing` and docs/departments.md.
"""

from shared.auth.dependency import SCHEME, Caller, require_scope

__all__ = ["SCHEME", "Caller", "require_scope"]
