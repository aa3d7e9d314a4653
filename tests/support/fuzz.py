"""Signed, schema-based fuzzing of a service with schemathesis (tests/integration/test_fuzz.py).

The pieces the fuzz test puts together:

- :func:`fuzz_config`: what schemathesis generates (positive and negative data, coverage and
  fuzzing phases, ``GONGHUI_FUZZ_EXAMPLES`` random examples per operation) and which checks run;
- :class:`SignedRequests`: signs each request as docs/departments.md says, from the bytes that go
  on the wire (a ``requests`` auth, so it runs on the final prepared request);
- :class:`ServedLikeUvicorn`: the app in-process as uvicorn serves it (one lifespan for the whole
  run; an exception that escapes after the 500 went out is the server's to log, not the client's
  to see), keeping the exception behind each server error as its root cause;
- :class:`Census`: every failure grouped by service, operation, check and kind, each kind with the
  smallest request found that shows it (:func:`shrink`); reported per operation and overall.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import threading
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote_to_bytes, urlsplit

import requests
import schemathesis

from shared.auth import signing

if TYPE_CHECKING:
    from schemathesis.core.failures import Failure

EXAMPLES_ENV = "GONGHUI_FUZZ_EXAMPLES"
SEED_ENV = "GONGHUI_FUZZ_SEED"
# Random (fuzzing-phase) examples per operation, positive and negative together; the coverage
# phase adds its deterministic cases (boundaries, wrong types, missing fields) on top, some 35 an
# operation. At 10 the four services' 124 operations take about 6,000 requests and under a
# minute of CPU (1.5 to 3 minutes of wall time on two cores, as busy as they are); 50 digs
# deeper in about twice the time.
DEFAULT_EXAMPLES = 10
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
ROOT = Path(__file__).resolve().parents[2]
CENSUS_DIR = ROOT / "var" / "fuzz"


def max_examples() -> int:
    raw = os.environ.get(EXAMPLES_ENV, "")
    try:
        value = int(raw) if raw else DEFAULT_EXAMPLES
    except ValueError:
        raise ValueError(f"{EXAMPLES_ENV} must be a whole number, not {raw!r}") from None
    if value < 1:
        raise ValueError(f"{EXAMPLES_ENV} must be at least 1")
    return value


def fuzz_seed() -> int:
    """``GONGHUI_FUZZ_SEED``, or a fresh one (the census prints it, to run the same cases again)."""
    raw = os.environ.get(SEED_ENV, "")
    try:
        return int(raw) if raw else random.randrange(2**63)
    except ValueError:
        raise ValueError(f"{SEED_ENV} must be a whole number, not {raw!r}") from None


def fuzz_config(seed: int) -> schemathesis.Config:
    """Positive and negative data from the coverage and fuzzing phases, the four response checks,
    nothing stateful. Strings may hold NUL and control characters (``allow-x00``): refusing them
    cleanly is part of the contract."""
    data: dict[str, Any] = {
        "seed": seed,
        "generation": {
            "mode": "all",
            "max-examples": max_examples(),
            "allow-x00": True,
            # The signature header is the harness's to set, not a parameter to fuzz.
            "with-security-parameters": False,
            # Each run starts afresh: no replay of earlier runs' failures from .hypothesis/.
            "database": "none",
        },
        "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
        "phases": {
            "examples": {"enabled": True},
            # Probing undeclared methods (405s) is none of the four checks' business.
            "coverage": {"enabled": True, "unexpected-methods": []},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},
        },
        # /readyz answering 503 while Postgres or Kafka is away is what it is for (documented).
        "operations": [
            {
                "include-path": "/readyz",
                "checks": {
                    "not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503"]}
                },
            }
        ],
        "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
    }
    return schemathesis.Config.from_dict(data)


def declared_scopes(openapi: dict[str, Any]) -> set[str]:
    """Every scope any operation of the document asks for."""
    return {
        scope
        for operations in openapi.get("paths", {}).values()
        for operation in operations.values()
        if isinstance(operation, dict)
        for requirement in operation.get("security", [])
        for scopes in requirement.values()
        for scope in scopes
    }


def canonical_path(raw_path: str) -> str:
    """docs/departments.md: the path as sent, percent-decoded, then percent-encoded as UTF-8
    keeping A-Z a-z 0-9 - _ . ~ and /."""
    decoded = unquote_to_bytes(raw_path).decode("utf-8", errors="replace")
    return quote(decoded, safe="/-_.~")


def signed_headers(
    app_id: str,
    secret: str,
    method: str,
    raw_path: str,
    raw_query: str,
    body: bytes,
    *,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The four signature headers for a request whose target (as sent, percent-encoded) and body
    are exactly these."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or signing.new_nonce()
    canonical = "\n".join(
        (
            signing.ALGORITHM,
            method.upper(),
            canonical_path(raw_path),
            signing.canonical_query(raw_query),
            ts,
            nonce,
            signing.body_digest(body),
        )
    )
    return {
        signing.APP_ID: app_id,
        signing.TIMESTAMP: ts,
        signing.NONCE: nonce,
        signing.SIGNATURE: signing.signature(secret, canonical),
    }


class SignedRequests(requests.auth.AuthBase):
    """Signs a ``requests`` request once it is prepared: its URL and body are the bytes that go on
    the wire (schemathesis' ASGI transport hands the app exactly these). Counts what it cannot
    sign (a query that is not UTF-8): such a request goes unsigned, and must be refused."""

    def __init__(self, app_id: str, secret: str) -> None:
        self.app_id = app_id
        self._secret = secret
        self.unsignable = 0

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        target = urlsplit(request.url or "")
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        if not isinstance(body, bytes):  # a streamed body: schemathesis never sends one here
            self.unsignable += 1
            return request
        try:
            headers = signed_headers(
                self.app_id,
                self._secret,
                request.method or "GET",
                target.path or "/",
                target.query,
                body,
            )
        except signing.SignatureError:  # a query that is not UTF-8 cannot be signed at all
            self.unsignable += 1
            return request
        request.headers.update(headers)
        return request

    def __repr__(self) -> str:
        return f"SignedRequests(app_id={self.app_id!r}, secret=***)"


class ServedLikeUvicorn:
    """The app as uvicorn serves it, in schemathesis' event-loop thread.

    - Its lifespan lasts until :meth:`close`, as a server process's does. Schemathesis starts an
      app's lifespan on the first request and ends it after each test item (one operation): that
      would restart the service for every operation. Here the first startup starts the real
      lifespan; later startups and every shutdown schemathesis sends are answered at once.
    - Starlette sends its 500 and then re-raises the exception for the server to log; uvicorn
      logs it (and answers 500 itself if nothing was sent yet), so a client sees a 500, never the
      exception. The in-process transport would raise it into the test instead: this wrapper does
      what uvicorn does, and keeps the exception as the root cause of the request's server error
      (requests are sent one at a time).

    The schemas the tests are generated from are given this wrapper when they are collected;
    ``app`` is set when the service starts."""

    def __init__(self, app: Any = None) -> None:
        self.app = app
        self.last_fault: Fault | None = None
        self._lifespan: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inbox: asyncio.Queue[dict[str, Any]] | None = None
        self._ended = threading.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self.app is None:
            raise RuntimeError("the service has not been started")
        if scope["type"] == "lifespan":
            await self._answer_lifespan(receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.last_fault = None
        started = False

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            self.last_fault = Fault.of(exc)
            if not started:
                body = b"Internal Server Error"
                headers = [(b"content-type", b"text/plain; charset=utf-8")]
                headers.append((b"content-length", str(len(body)).encode()))
                await send({"type": "http.response.start", "status": 500, "headers": headers})
                await send({"type": "http.response.body", "body": body})

    async def _answer_lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._start_lifespan()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _start_lifespan(self) -> None:
        if self._lifespan is not None:
            if self._lifespan.done():
                raise RuntimeError("the service's lifespan has ended")
            return
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        inbox.put_nowait({"type": "lifespan.startup"})
        outcome: asyncio.Future[dict[str, Any]] = loop.create_future()

        async def sent(message: dict[str, Any]) -> None:
            if message["type"].startswith("lifespan.startup") and not outcome.done():
                outcome.set_result(message)

        async def run() -> None:
            try:
                scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
                await self.app(scope, inbox.get, sent)
            finally:
                self._ended.set()
                if not outcome.done():
                    outcome.set_result({"type": "lifespan.startup.failed", "message": "it ended"})

        self._loop, self._inbox, self._ended = loop, inbox, threading.Event()
        self._lifespan = loop.create_task(run())
        message = await outcome
        if message["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"the service did not start: {message.get('message', '')}")

    def close(self, timeout: float = 30.0) -> None:
        """End the service's lifespan (from any thread but the event loop's)."""
        if self._lifespan is None or self._loop is None or self._inbox is None:
            return
        if not self._lifespan.done():
            self._loop.call_soon_threadsafe(self._inbox.put_nowait, {"type": "lifespan.shutdown"})
            self._ended.wait(timeout)
        self._lifespan = self._loop = self._inbox = None


@dataclass(frozen=True)
class Fault:
    """The exception behind a server error: ``key`` (its type and the innermost project line it
    was raised through) groups requests that fail the same way; ``message`` is one of them."""

    key: str
    message: str

    @classmethod
    def of(cls, exc: BaseException) -> Fault:
        while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
            exc = exc.exceptions[0]
        kind = type(exc)
        name = kind.__qualname__
        if kind.__module__ != "builtins":
            name = f"{kind.__module__}.{name}"
        where = ""
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            path = Path(frame.filename)
            if path.is_relative_to(ROOT) and ".venv" not in path.parts:
                where = f" at {path.relative_to(ROOT)}:{frame.lineno}"
                break
        first_line = (str(exc).strip().splitlines() or [""])[0]
        return cls(f"{name}{where}", f"{name}: {first_line[:200]}")


# --- the census -------------------------------------------------------------------------------

_INDEX = re.compile(r"/\d+(?=/|$)")


def check_of(failure: Failure) -> str:
    names = type(failure).checks
    wanted = [name for name in names if name in CHECKS]
    return wanted[0] if wanted else (names[0] if names else type(failure).__name__)


def kind_of(failure: Failure, fault: Fault | None) -> tuple[str, str]:
    """(what went wrong, the same for every request it went wrong for; a detail of this one)."""
    first_line = (failure.message.strip().splitlines() or [""])[0][:200]
    if "not_a_server_error" in type(failure).checks:
        status = getattr(failure, "status_code", "5xx")
        if fault is None:
            return f"{status}, no exception escaped", first_line
        return f"{status} {fault.key}", fault.message
    status = getattr(failure, "status_code", None)
    if status is not None:  # "Received: 404" is in the kind; the next line says what is documented
        lines = failure.message.strip().splitlines()
        return f"{failure.title}: {status}", (lines[1].strip() if len(lines) > 1 else "")
    content_type = getattr(failure, "content_type", None)
    if content_type is not None:
        return f"{failure.title}: {content_type}", first_line
    schema_path = getattr(failure, "schema_path", None)
    if schema_path is not None:
        keyword = str(list(schema_path)[-1]) if schema_path else "?"
        where = "/" + "/".join(str(p) for p in getattr(failure, "instance_path", []))
        detail = str(getattr(failure, "_raw_message", "") or first_line)[:200]
        return f"{failure.title}: `{keyword}` at {_INDEX.sub('/N', where)}", detail
    return failure.title, first_line


def curl(case: schemathesis.Case, base_url: str) -> str:
    """The request as a one-line curl command, without its signature headers (they are good for
    one request only)."""
    command = case.as_curl_command(base_url=base_url).split("\n\n⚠️", 1)[0]
    return " ".join(line.rstrip("\\").strip() for line in command.splitlines())


def answer(response: schemathesis.Response) -> str:
    body = response.content or b""
    text = body[:160].decode("utf-8", errors="replace").replace("\n", " ")
    return f"-> {response.status_code} {text}{'…' if len(body) > 160 else ''}"


Key = tuple[str, str]  # (check, kind of failure)


@dataclass
class Outcome:
    """What one request met: its answer and the failures the checks found, or no answer."""

    response: schemathesis.Response | None = None
    failures: list[Failure] = field(default_factory=list)
    fault: Fault | None = None  # the exception behind a server error
    error: Exception | None = None  # why there was no answer

    def kinds(self) -> dict[Key, str]:
        """Each kind of failure shown, with a detail of it."""
        if self.error is not None:
            fault = Fault.of(self.error)
            return {("no_answer", fault.key): fault.message}
        found: dict[Key, str] = {}
        for failure in self.failures:
            kind, detail = kind_of(failure, self.fault)
            found.setdefault((check_of(failure), kind), detail)
        return found


# --- shrinking: the census shows each kind with the smallest request found to show it ----------

SHRINK_ABOVE = 120  # characters of curl: a shorter request is left as it is
SHRINK_BUDGET = 40  # requests spent on one kind at most


Tag = tuple[Any, ...]  # where a variant differs and how, e.g. ("body", "name", "drop")


def _simpler(value: Any, at: Tag = ()) -> Iterator[tuple[Tag, Any]]:
    """Smaller variants of a JSON-like value, the boldest first, each tagged with what changed.
    Only plain values are touched: anything else (a raw query string, a file) stays as it is."""
    if type(value) is dict:
        for key in value:
            yield (*at, key, "drop"), {k: v for k, v in value.items() if k != key}
        for key, item in value.items():
            for tag, smaller in _simpler(item, (*at, key)):
                yield tag, {**value, key: smaller}
    elif type(value) is list:
        if len(value) > 1:
            yield (*at, "half"), value[: len(value) // 2]
            yield (*at, "half"), value[len(value) // 2 :]
        for i in range(len(value)):
            yield (*at, i, "cut"), value[:i] + value[i + 1 :]
        for i, item in enumerate(value):
            for tag, smaller in _simpler(item, (*at, i)):
                yield tag, [*value[:i], smaller, *value[i + 1 :]]
    elif type(value) is str and len(value) > 1:
        half = len(value) // 2
        yield (*at, "half"), value[:half]
        yield (*at, "half"), value[half:]
        if len(value) <= 8:
            for i in range(len(value)):
                yield (*at, i, "cut"), value[:i] + value[i + 1 :]


def _variants(case: schemathesis.Case) -> Iterator[tuple[Tag, schemathesis.Case]]:
    """Cases like ``case`` with one part made smaller: a query parameter or body member dropped,
    a string or list halved..."""
    parts: dict[str, Any] = {
        "path_parameters": case.path_parameters,
        "query": case.query,
        "body": case.body,
    }
    for name, value in parts.items():
        if not value or (name == "body" and type(value) not in (dict, list, str)):
            continue
        for tag, smaller in _simpler(value, (name,)):
            if name == "path_parameters" and set(smaller) != set(value or {}):
                continue  # a path needs all its parameters
            changed = {**parts, name: smaller}
            yield (
                tag,
                case.operation.Case(
                    method=case.method,
                    path_parameters=changed["path_parameters"],
                    headers=case.headers,
                    cookies=case.cookies,
                    query=changed["query"],
                    body=changed["body"],
                    media_type=case.media_type,
                ),
            )


def shrink(
    case: schemathesis.Case, key: Key, probe: Callable[[schemathesis.Case], Outcome]
) -> tuple[schemathesis.Case, Outcome | None, int]:
    """A smaller case that still shows the kind of failure ``key`` (greedy: the first smaller
    variant that does is kept, then its own variants are tried), and the requests it took.
    Dropping a member that was needed once is not tried again."""
    best, outcome, spent = case, None, 0
    needed: set[Tag] = set()
    improved = True
    while improved and spent < SHRINK_BUDGET:
        improved = False
        for tag, candidate in _variants(best):
            if tag in needed:
                continue
            if spent >= SHRINK_BUDGET:
                break
            spent += 1
            seen = probe(candidate)
            if key in seen.kinds() and size_of(candidate) < size_of(best):
                best, outcome, improved = candidate, seen, True
                break
            if tag[-1] == "drop":
                needed.add(tag)
    return best, outcome, spent


def size_of(case: schemathesis.Case) -> int:
    return len(repr((case.path_parameters, case.query, case.body)))


# --- the census ----------------------------------------------------------------------------------


@dataclass
class Finding:
    """One kind of failure of one check on one operation, with the smallest case that shows it."""

    requests: int = 0
    case: schemathesis.Case | None = None
    repro: str = ""
    detail: str = ""
    answer: str = ""
    shrunk: bool = False

    def add(self, case: schemathesis.Case, repro: str, detail: str, outcome: Outcome) -> None:
        self.requests += 1
        if not self.repro or len(repro) < len(self.repro):
            self.show(case, repro, detail, outcome)

    def show(self, case: schemathesis.Case, repro: str, detail: str, outcome: Outcome) -> None:
        self.case, self.repro, self.detail = case, repro, detail
        self.answer = answer(outcome.response) if outcome.response is not None else ""


Findings = dict[str, dict[str, Finding]]  # check -> kind -> finding


def format_findings(findings: Findings, indent: str) -> list[str]:
    lines = []
    for check in sorted(findings):
        for kind, finding in sorted(findings[check].items()):
            lines.append(f"{indent}[{check}] {kind}  ({finding.requests} requests)")
            for text in (finding.detail, finding.repro, finding.answer):
                if text:
                    lines.append(f"{indent}    {text}")
    return lines


@dataclass
class Census:
    """Failures by service -> operation -> check -> kind, each kind with its smallest request."""

    examples: int = 0
    seed: int | None = None
    operations: dict[str, int] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)
    shrinking: Counter[str] = field(default_factory=Counter)
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    unsigned: Counter[str] = field(default_factory=Counter)
    seconds: dict[str, float] = field(default_factory=dict)
    findings: dict[str, dict[str, Findings]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(dict)))
    )
    # The operation under test right now (one pytest item): which, and its requests so far.
    current: tuple[str, str] | None = None
    item_requests: int = 0

    def begin_item(self) -> None:
        self.current, self.item_requests = None, 0

    def sent(self, service: str, operation: str, status: int | None) -> None:
        self.current = (service, operation)
        self.requests[service] += 1
        self.item_requests += 1
        if status is not None:
            self.statuses[service][status] += 1

    def record(
        self,
        service: str,
        operation: str,
        case: schemathesis.Case,
        outcome: Outcome,
        repro: Callable[[schemathesis.Case], str],
    ) -> None:
        kinds = outcome.kinds()
        if not kinds:
            return
        text = repro(case)
        for (check, kind), detail in kinds.items():
            finding = self.findings[service][operation][check].setdefault(kind, Finding())
            finding.add(case, text, detail, outcome)

    def shrink_item(
        self,
        probe: Callable[[schemathesis.Case], Outcome],
        repro: Callable[[schemathesis.Case], str],
    ) -> None:
        """Makes the request shown for each kind the operation under test failed with smaller."""
        if self.current is None:
            return
        service, operation = self.current
        for check, kinds in self.findings.get(service, {}).get(operation, {}).items():
            for kind, finding in kinds.items():
                if finding.case is None or finding.shrunk or len(finding.repro) <= SHRINK_ABOVE:
                    continue
                before = self.requests[service]
                smaller, outcome, _ = shrink(finding.case, (check, kind), probe)
                self.shrinking[service] += self.requests[service] - before
                finding.shrunk = True
                if outcome is not None:
                    detail = outcome.kinds().get((check, kind), finding.detail)
                    finding.show(smaller, repro(smaller), detail, outcome)

    def item_report(self, title: str) -> str | None:
        """What the operation just tested failed with, or None if nothing."""
        if self.current is None or not self.findings.get(self.current[0], {}).get(self.current[1]):
            return None
        found = self.findings[self.current[0]][self.current[1]]
        kinds = sum(len(of_check) for of_check in found.values())
        lines = [
            f"{title}: {kinds} kind(s) of failure ({', '.join(sorted(found))}) "
            f"in {self.item_requests} signed requests; the smallest request found of each kind:"
        ]
        return "\n".join(lines + format_findings(found, "  "))

    def report(self) -> str:
        lines = [
            f"Fuzz census: {', '.join(CHECKS)}; {self.examples} random examples per operation "
            f"({EXAMPLES_ENV}) besides the coverage cases; seed {self.seed} ({SEED_ENV})"
        ]
        for service in sorted(self.operations):
            found = {op: checks for op, checks in self.findings.get(service, {}).items() if checks}
            took = self.seconds.get(service)
            lines.append(
                f"\n== {service}: {self.operations[service]} operations, "
                f"{self.requests[service]} requests ({self.shrinking[service]} of them shrinking)"
                + (f" in {took:.0f} s" if took is not None else "")
                + f"; {len(found)} operations fail"
            )
            statuses = self.statuses[service]
            if statuses:
                lines.append(
                    "   answers: "
                    + ", ".join(f"{status} ×{n}" for status, n in sorted(statuses.items()))
                )
            if self.unsigned[service]:
                lines.append(f"   {self.unsigned[service]} requests could not be signed")
            by_check: Counter[str] = Counter()
            kinds: Counter[Key] = Counter()
            for checks in found.values():
                by_check.update(checks.keys())
                kinds.update(
                    (check, kind) for check, of_check in checks.items() for kind in of_check
                )
            if by_check:
                lines.append(
                    "   operations failing each check: "
                    + ", ".join(f"{check} {n}" for check, n in by_check.most_common())
                )
                lines.append("   most common kinds (operations affected):")
                lines += [
                    f"     {n:3} × [{check}] {kind}" for (check, kind), n in kinds.most_common(8)
                ]
            for operation in sorted(found):
                lines.append(f"\n   {operation}")
                lines += format_findings(found[operation], "     ")
        lines.append(
            "\nEach request shown is the smallest found of its kind, without its four X-Gonghui-* "
            "headers: sign it with a credential holding the operation's scope "
            "(docs/departments.md, python -m shared.auth.client)."
        )
        return "\n".join(lines)

    def write(self) -> Path:
        CENSUS_DIR.mkdir(parents=True, exist_ok=True)
        path = CENSUS_DIR / "census.txt"
        path.write_text(self.report() + "\n", encoding="utf-8")
        return path
