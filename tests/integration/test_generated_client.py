"""A department generates its client from the published OpenAPI with a standard generator
(openapi-python-client): for every service it builds without a warning and imports, and a
generated client makes a signed call that the service serves."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from deploy.openapi import OPENAPI_DIR, SERVICES
from services.training import main as training
from shared.auth.client import SignedAuth
from tests.support.auth import issue_credential
from tests.support.database import ScratchDatabase
from tests.support.servers import Servers
from tests.support.service import running, settings_for

pytestmark = pytest.mark.integration
VENV_BIN = Path(sys.executable).parent


def generate(service: str, into: Path) -> str:
    """Generate the client package of ``service`` under ``into``; its import name."""
    output = into / f"{service}_client"
    result = subprocess.run(
        [
            str(VENV_BIN / "openapi-python-client"),
            "generate",
            "--path",
            str(OPENAPI_DIR / f"{service}.json"),
            "--output-path",
            str(output),
            "--meta",
            "none",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
        timeout=300,
    )
    output_text = result.stdout + result.stderr
    assert result.returncode == 0, output_text
    skipped = set(re.findall(r"WARNING parsing (\S+ \S+) within", output_text))
    # WeChat's own push (XML, called by WeChat, never by a department) is the only operation a
    # department's generated client may leave out.
    assert skipped <= {"POST /wechat/callback"}, output_text
    if not skipped:
        assert "Warning" not in output_text, output_text
    return output.name


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    into = tmp_path_factory.mktemp("generated")
    sys.path.insert(0, str(into))
    try:
        yield {service: generate(service, into) for service in SERVICES}
    finally:
        sys.path.remove(str(into))


@pytest.mark.parametrize("service", SERVICES)
def test_a_client_generated_from_the_published_openapi_builds(
    clients: dict[str, str], service: str
) -> None:
    package = clients[service]
    api = Path(importlib.import_module(package).__file__ or "").parent / "api"
    modules = [p for p in api.rglob("*.py") if p.name != "__init__.py"]
    assert modules, "the generated client has no operations"
    for module in modules:
        relative = module.relative_to(api.parent).with_suffix("")
        importlib.import_module(".".join((package, *relative.parts)))


async def test_a_generated_client_makes_a_signed_call(
    clients: dict[str, str], database: ScratchDatabase, servers: Servers, namespace: str
) -> None:
    package = clients["training"]
    client_module = importlib.import_module(f"{package}.client")
    models = importlib.import_module(f"{package}.models")
    settings = settings_for(training.Settings, database, servers, namespace)
    async with running(training.build, settings) as (app, _):
        app_id, secret = await issue_credential(
            database.dsn("training"), settings.db_schema, scopes=["training:manage"]
        )
        client = client_module.Client(
            base_url="http://service",
            httpx_args={
                "transport": httpx.ASGITransport(app=app),
                "auth": SignedAuth(app_id, secret),
            },
        )
        create = importlib.import_module(f"{package}.api.courses.create_course")
        body = models.CreateCourse.from_dict(
            {"title": "工会财务知识", "kind": "cadre_training", "provider": "市总工会"}
        )
        async with client as c:
            answer = await create.asyncio_detailed(client=c, body=body)
    assert answer.status_code == 201, answer.content
    assert answer.parsed is not None and answer.parsed.title == "工会财务知识"
