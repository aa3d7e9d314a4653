"""Schema-based fuzzing of every operation of the five services, signed like a department system.

Each service runs in-process with its lifespan (migrations, database pool, Kafka producer,
relay, consumers) against a scratch database and a topic namespace of this module's own (what
the fuzz writes, webhook subscriptions included, never meets another test). Schemathesis
generates positive and negative requests from the service's OpenAPI document: its coverage
phase (boundary values, wrong types, missing and unknown fields) and
``GONGHUI_FUZZ_EXAMPLES`` random examples per operation (default 10). Its ASGI transport sends
each one signed (docs/departments.md) by a credential that holds every scope the service
declares, and four checks judge every answer: no 5xx, a documented status, a documented content
type, a body that conforms to the documented schema. NUL and control characters, 64-bit overflows
and malformed dates are meant: bad input must be a documented 4xx.

One test item per operation (``test_<service>[METHOD /path]``). A failing check does not stop
the item: every case runs (a failure raised into Hypothesis would end its search), then the
item fails with each kind of failure it met, by check (a server error's kind is the exception
behind it), each with the smallest request found that shows it, as curl (the shortest one
seen, then shrunk with a few more requests). After the run, a census of the failures of every
service, operation and check (also in var/fuzz/census.txt). ``GONGHUI_FUZZ_SEED`` replays a
run's cases (the census prints its seed).

    uv run --frozen pytest tests/integration/test_fuzz.py -q
    uv run --frozen pytest tests/integration/test_fuzz.py -q -k "mutual_aid and claims"
    GONGHUI_FUZZ_EXAMPLES=50 uv run --frozen pytest tests/integration/test_fuzz.py -q
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import schemathesis
from schemathesis.errors import FailureGroup

from services.membership import main as membership
from services.mutual_aid import main as mutual_aid
from services.notifications import main as notifications
from services.training import main as training
from services.union_funds import main as union_funds
from shared.auth import signing
from shared.kafka import delete_topics
from tests.support.auth import issue_credential
from tests.support.database import ScratchDatabase, create_database, drop_database
from tests.support.fuzz import (
    Census,
    Outcome,
    ServedLikeUvicorn,
    SignedRequests,
    curl,
    declared_scopes,
    fuzz_config,
    fuzz_seed,
    max_examples,
    signed_headers,
)
from tests.support.servers import Servers
from tests.support.service import settings_for

pytestmark = [
    pytest.mark.integration,
    # Raised from inside schemathesis' own strategies: nothing this module can act on.
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning"),
]
SERVICES: dict[str, ModuleType] = {
    "membership": membership,
    "mutual_aid": mutual_aid,
    "training": training,
    "notifications": notifications,
    "union_funds": union_funds,
}
# Operations that check the caller's department as well as its scope (see their services): their
# requests are signed by a credential of that department, every other one by the federation's.
DEPARTMENTS = {
    ("union_funds", "POST /remittances/batches"): "tax",
    ("union_funds", "POST /subsidies"): "finance",
    ("mutual_aid", "POST /backstop/requests/{request_id}/grants"): "finance",
}
DEFAULT_DEPARTMENT = "federation"
SEED = fuzz_seed()
CENSUS = Census(examples=max_examples(), seed=SEED)


def _document(service: str) -> dict[str, Any]:
    """The service's OpenAPI document as its app serves it at /openapi.json. Building the app
    connects to nothing; the running app the requests go to must serve the same document."""
    module = SERVICES[service]
    return module.build(module.Settings()).openapi()


DOCUMENTS = {service: _document(service) for service in SERVICES}
# What the requests to each service go to: the running app is put in when the service starts.
APPS = {service: ServedLikeUvicorn() for service in SERVICES}


@dataclass
class Target:
    """One service running in-process, and the credentials its requests are signed with."""

    service: str
    app: ServedLikeUvicorn
    signers: dict[str, SignedRequests]
    repro_base_url: str
    started: float

    def run(self, case: schemathesis.Case) -> None:
        """Send one generated case and put what it fails with in the census. The case passes, so
        that Hypothesis runs every case of the operation (a raised failure would end its search
        there): the operation's item fails afterwards, see ``CensusPlugin``."""
        CENSUS.record(self.service, case.operation.label, case, self.examine(case), self.repro)

    def examine(self, case: schemathesis.Case) -> Outcome:
        """Send ``case``, signed, and check the answer."""
        operation = case.operation.label
        auth = self.signers[DEPARTMENTS.get((self.service, operation), DEFAULT_DEPARTMENT)]
        # The transport sends to the case's app (this one); a check that sends a request of its
        # own (e.g. a control for a Content-Type probe) is given the same signing.
        sending: dict[str, Any] = {"base_url": "http://testserver", "auth": auth}
        try:
            response = case.call(**sending)
        except Exception as exc:  # no answer to check, e.g. the app did not answer in time
            CENSUS.sent(self.service, operation, None)
            return Outcome(error=exc)
        CENSUS.sent(self.service, operation, response.status_code)
        try:
            case.validate_response(response, transport_kwargs=sending)
        except FailureGroup as group:
            return Outcome(response, list(group.exceptions), self.app.last_fault)
        return Outcome(response)

    def repro(self, case: schemathesis.Case) -> str:
        return curl(case, self.repro_base_url)


class Fleet:
    """Starts each service when its first test runs, and stops the one before: one service's
    relay and consumers at a time share the two cores with the fuzzing."""

    def __init__(self, database: ScratchDatabase, servers: Servers, namespace: str) -> None:
        self.database, self.servers, self.namespace = database, servers, namespace
        self.current: Target | None = None
        self.failed: dict[str, str] = {}

    def target(self, service: str) -> Target:
        if service in self.failed:  # fail at once, not once per generated case
            pytest.fail(self.failed[service], pytrace=False)
        if self.current is None or self.current.service != service:
            self.stop()
            try:
                self.current = self._start(service)
            except Exception as exc:
                self.failed[service] = f"{service} did not start: {exc!r}"
                raise
        return self.current

    def _start(self, service: str) -> Target:
        module = SERVICES[service]
        settings = settings_for(module.Settings, self.database, self.servers, self.namespace)
        app = APPS[service]
        app.app = module.build(settings)
        started = time.monotonic()
        # Loading the schema through the app starts its lifespan (migrations first) in
        # schemathesis' event-loop thread, where every request to it then runs; it lasts until
        # the service is stopped (see ServedLikeUvicorn).
        served = schemathesis.openapi.from_asgi("/openapi.json", app).raw_schema
        assert served == DOCUMENTS[service], f"{service} serves another document than was fuzzed"
        scopes = sorted(declared_scopes(served))
        departments = {DEFAULT_DEPARTMENT}
        departments |= {dept for (owner, _), dept in DEPARTMENTS.items() if owner == service}

        async def issue() -> dict[str, tuple[str, str]]:
            dsn = self.database.dsn(service)
            return {
                dept: await issue_credential(
                    dsn, service, scopes=scopes, department=dept, name=f"fuzz-{dept}"
                )
                for dept in sorted(departments)
            }

        # The test is synchronous (Hypothesis drives it): the credentials are written from a
        # thread of their own rather than from the test session's event loop.
        with ThreadPoolExecutor(1) as pool:
            issued = pool.submit(asyncio.run, issue()).result()
        signers = {dept: SignedRequests(*credential) for dept, credential in issued.items()}
        CENSUS.operations[service] = sum(len(operations) for operations in served["paths"].values())
        repro = f"http://127.0.0.1:{settings.http_port}"
        return Target(service, app, signers, repro, started)

    def stop(self) -> None:
        if self.current is None:
            return
        target, self.current = self.current, None
        target.app.close()
        CENSUS.unsigned[target.service] += sum(s.unsignable for s in target.signers.values())
        CENSUS.seconds[target.service] = (
            CENSUS.seconds.get(target.service, 0.0) + time.monotonic() - target.started
        )


class CensusPlugin:
    """Once all the cases of an operation's item have run, makes the request shown for each kind
    of failure smaller and fails the item with them; prints the census after pytest's summary."""

    name = "gonghui-fuzz-census"

    def __init__(self) -> None:
        self.fleet: Fleet | None = None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        if item.path != Path(__file__):
            return (yield)
        CENSUS.begin_item()
        result = yield
        target = self.fleet.current if self.fleet is not None else None
        if target is not None:
            CENSUS.shrink_item(target.examine, target.repro)
        found = CENSUS.item_report(item.name)
        if found:
            pytest.fail(found, pytrace=False)
        return result

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item) -> Generator[None, Any, Any]:
        report = yield
        if item.path == Path(__file__):
            # A server error's traceback is logged for each request that met it: thousands of
            # lines. The item's message names each root cause, and shows one request for it.
            report.sections = [s for s in report.sections if not s[0].startswith("Captured log")]
        return report

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not CENSUS.operations:
            return
        path = CENSUS.write()
        terminalreporter.section("fuzz census")
        terminalreporter.write_line(CENSUS.report())
        terminalreporter.write_line(f"(also written to {path})")


@pytest.fixture(scope="module")
async def fleet(request: pytest.FixtureRequest, servers: Servers) -> AsyncIterator[Fleet]:
    manager = request.config.pluginmanager
    plugin = manager.get_plugin(CensusPlugin.name)
    if plugin is None:
        plugin = CensusPlugin()
        manager.register(plugin, CensusPlugin.name)
    database = await create_database(servers)
    namespace = f"fz{uuid.uuid4().hex[:8]}."
    running = plugin.fleet = Fleet(database, servers, namespace)
    try:
        yield running
    finally:
        running.stop()
        await delete_topics(servers.kafka_bootstrap, namespace)
        await drop_database(database)


def fuzz_test(service: str) -> Callable[..., None]:
    """A test of every operation of ``service``, one item each."""
    schema = schemathesis.openapi.from_dict(DOCUMENTS[service], config=fuzz_config(SEED))
    schema.app = APPS[service]  # every operation's requests go to it, in-process

    @schema.parametrize()
    def test(case: schemathesis.Case, fleet: Fleet) -> None:
        fleet.target(service).run(case)

    test.__doc__ = f"Every operation of {service}, signed, with generated data."
    return test


@pytest.mark.parametrize(
    ("raw_path", "query"),
    [
        ("/claims/%E5%BC%A0%20%E4%B8%89/review", "b=2&a=1&q=x+y"),
        ("/members/%23%3F%2F", ""),  # '#', '?' and '/' inside a path parameter
        ("/cards/%09%0D%00%5C", "after=%00"),  # control characters, NUL, backslash
        ("/organisations/%F0%9F%98%80", "name=%E2%80%AE"),
    ],
)
def test_the_fuzz_signs_as_the_services_verify(raw_path: str, query: str) -> None:
    """The signature the fuzz sends is the documented one (docs/departments.md's vector) and the
    one shared.auth.signing accepts, for targets as odd as the fuzz sends."""
    vector = signed_headers(
        "app", "s3cr3t", "GET", "/healthz", "", b"", timestamp=1767225600, nonce="abcdefghijklmnop"
    )
    assert vector[signing.SIGNATURE] == (
        "cf630eac74c90a48a674ae1a3ec86971ec12b5e4b576e2e9923e0249d1a1ff4f"
    )
    body = b'{"name": "\\u0000"}'
    headers = signed_headers("app", "s3cr3t", "POST", raw_path, query, body)
    app_id = signing.verify(
        "s3cr3t",
        method="POST",
        path=raw_path.encode(),
        query=query.encode(),
        body=body,
        headers=headers,
    )
    assert app_id == "app"


test_membership = fuzz_test("membership")
test_mutual_aid = fuzz_test("mutual_aid")
test_training = fuzz_test("training")
test_notifications = fuzz_test("notifications")
test_union_funds = fuzz_test("union_funds")
