"""Every training endpoint but the public verification needs a signed request holding its scope:
unsigned is 401, the wrong scope is 403, its own scope gets through to the endpoint."""

from __future__ import annotations

import re

import pytest

from tests.integration.training.conftest import Training
from tests.support.auth import WEBHOOK_ROUTES

pytestmark = pytest.mark.integration
MANAGE, READ, ENROL = "training:manage", "training:read", "training:enrol"
VIEWING, REPORTS = "training:viewing", "reports:read"

MATRIX = {
    ("POST", "/courses"): MANAGE,
    ("GET", "/courses"): READ,
    ("GET", "/courses/{course_id}"): READ,
    ("GET", "/courses/{course_id}/classes"): READ,
    ("POST", "/courses/{course_id}/classes"): MANAGE,
    ("GET", "/classes"): READ,
    ("GET", "/classes/{class_id}"): READ,
    ("PUT", "/classes/{class_id}/capacity"): MANAGE,
    ("GET", "/classes/{class_id}/enrolments"): MANAGE,
    ("POST", "/classes/{class_id}/enrolments"): ENROL,
    ("GET", "/classes/{class_id}/enrolments/{member_id}"): ENROL,
    ("POST", "/classes/{class_id}/enrolments/{member_id}/cancellation"): ENROL,
    ("POST", "/classes/{class_id}/enrolments/{member_id}/offer-acceptance"): ENROL,
    ("POST", "/classes/{class_id}/enrolments/{member_id}/approval"): MANAGE,
    ("POST", "/classes/{class_id}/enrolments/{member_id}/rejection"): MANAGE,
    ("POST", "/classes/{class_id}/enrolments/{member_id}/staff-cancellation"): MANAGE,
    ("POST", "/classes/{class_id}/no-show-release"): MANAGE,
    ("GET", "/classes/{class_id}/sessions/{session_id}/check-in-code"): MANAGE,
    ("POST", "/classes/{class_id}/sessions/{session_id}/attendance"): MANAGE,
    ("POST", "/classes/{class_id}/sessions/{session_id}/check-in"): ENROL,
    ("PUT", "/classes/{class_id}/enrolments/{member_id}/score"): MANAGE,
    ("POST", "/classes/{class_id}/viewing-reports"): VIEWING,
    ("POST", "/classes/{class_id}/viewing-reports/batches"): VIEWING,
    ("GET", "/members/{member_id}/enrolments"): ENROL,
    ("GET", "/members/{member_id}/certificates"): ENROL,
    ("GET", "/reports/classes/{class_id}"): REPORTS,
    ("GET", "/reports/courses/{course_id}"): REPORTS,
    ("GET", "/reports/unions/{union_id}"): REPORTS,
    **WEBHOOK_ROUTES,
}
PUBLIC = {("GET", "/certificates/{number}/verification"), ("GET", "/healthz"), ("GET", "/readyz")}


def _url(template: str) -> str:
    url = re.sub(r"\{(\w+)\}", lambda m: f"no-such-{m.group(1)}", template)
    return url + ("?year=2026" if template.startswith("/reports/unions") else "")


async def test_the_matrix_covers_every_operation_and_openapi_lists_each_scope(
    training: Training,
) -> None:
    operations = {
        (method.upper(), path): op
        for path, item in training.app.openapi()["paths"].items()
        for method, op in item.items()
    }
    assert set(operations) == set(MATRIX) | PUBLIC
    for key, scope in MATRIX.items():
        assert operations[key]["security"] == [{"GonghuiSignature": [scope]}], key
    for key in PUBLIC:
        assert "security" not in operations[key], key


@pytest.mark.parametrize(("method", "template"), sorted(MATRIX))
async def test_unsigned_is_401_wrong_scope_403_own_scope_passes(
    training: Training, method: str, template: str
) -> None:
    url, scope = _url(template), MATRIX[(method, template)]
    body: dict[str, object] | None = {} if method in ("POST", "PUT") else None

    unsigned = await training.public.request(method, url, json=body)
    assert unsigned.status_code == 401, unsigned.text

    others = sorted({MANAGE, READ, ENROL, VIEWING, REPORTS} - {scope})
    async with await training.client(*others) as wrong:
        refused = await wrong.request(method, url, json=body)
    assert refused.status_code == 403, refused.text
    assert refused.json()["errors"] == [
        {
            "field": "scope",
            "code": "missing_scope",
            "message": f"this credential lacks the scope {scope!r}",
        }
    ]

    async with await training.client(scope) as right:
        admitted = await right.request(method, url, json=body)
    # Past the guard: the endpoint itself answers (unknown ids, an empty body).
    assert admitted.status_code in (200, 404, 422), admitted.text
