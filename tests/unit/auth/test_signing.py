"""The canonical string and signature, against fixed vectors and tampering."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import httpx
import pytest

from shared.auth import signing
from shared.auth.client import SignedAuth

SECRET = "s3cr3t"
TS = "1767225600"
NONCE = "abcdefghijklmnop"
NOW = 1767225600.0


def test_canonical_string_vector() -> None:
    canonical = signing.canonical_string(
        "post", "/claims/张 三/review", "b=2&a=1&a=0&q=x+y&e=", TS, NONCE, b'{"x":1}'
    )
    assert canonical == (
        "GONGHUI-HMAC-SHA256\n"
        "POST\n"
        "/claims/%E5%BC%A0%20%E4%B8%89/review\n"
        "a=0&a=1&b=2&e=&q=x%20y\n"
        "1767225600\n"
        "abcdefghijklmnop\n"
        "5041bf1f713df204784353e82f6a4a535931cb64f1f4b4a5aeaffcb720918b22"
    )
    assert signing.signature(SECRET, canonical) == (
        "02df0a758072715a67ec9786f8b7415d0865e6651e81f504f44b4754376378cc"
    )


def test_empty_body_and_query_vector() -> None:
    canonical = signing.canonical_string("GET", "/healthz", "", TS, NONCE, b"")
    assert canonical.split("\n")[3] == ""  # an empty query is an empty line
    assert canonical.endswith(hashlib.sha256(b"").hexdigest())
    # Checked with: printf '<canonical>' | openssl dgst -sha256 -hmac s3cr3t
    assert signing.signature(SECRET, canonical) == (
        "cf630eac74c90a48a674ae1a3ec86971ec12b5e4b576e2e9923e0249d1a1ff4f"
    )
    expected = hmac.new(SECRET.encode(), canonical.encode(), hashlib.sha256).hexdigest()
    assert signing.signature(SECRET, canonical) == expected


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("/a%20b", "/a b"),  # encoded and decoded paths agree
        ("/%E5%BC%A0", "/张"),
    ],
)
def test_path_encoding_variants_agree(a: str, b: str) -> None:
    from urllib.parse import unquote

    assert signing.canonical_path(unquote(a)) == signing.canonical_path(b)


def test_query_order_and_encoding_do_not_matter() -> None:
    assert signing.canonical_query("b=2&a=%E5%BC%A0") == signing.canonical_query(
        b"a=\xe5\xbc\xa0&b=2"
    )
    assert signing.canonical_query("x=a%2Fb") == "x=a%2Fb"  # a slash in a value stays encoded
    assert signing.canonical_query("q=a+b") == signing.canonical_query("q=a%20b")


def headers() -> dict[str, str]:
    return signing.sign(
        "tax-0123456789ab",
        SECRET,
        method="POST",
        path="/claims",
        query="a=1",
        body=b'{"amount": 100}',
        timestamp=int(NOW),
        nonce=NONCE,
    )


def good(**changes: object) -> dict[str, object]:
    request: dict[str, object] = {
        "method": "POST",
        "path": "/claims",
        "query": "a=1",
        "body": b'{"amount": 100}',
        "headers": headers(),
        "now": NOW,
    }
    return request | changes


def test_verify_accepts_the_signed_request() -> None:
    assert signing.verify(SECRET, **good()) == "tax-0123456789ab"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "tampered",
    [
        {"method": "PUT"},
        {"path": "/claims/other"},
        {"query": "a=2"},
        {"query": "a=1&b=1"},
        {"body": b'{"amount": 1000}'},
        {"body": b""},
    ],
    ids=["method", "path", "query", "extra-query", "body", "no-body"],
)
def test_verify_refuses_tampering(tampered: dict[str, object]) -> None:
    with pytest.raises(signing.SignatureError, match="does not match"):
        signing.verify(SECRET, **good(**tampered))  # type: ignore[arg-type]


def test_verify_refuses_a_changed_timestamp_or_nonce_header() -> None:
    for name, value in ((signing.TIMESTAMP, str(int(NOW) + 1)), (signing.NONCE, "x" * 16)):
        with pytest.raises(signing.SignatureError, match="does not match"):
            signing.verify(SECRET, **good(headers=headers() | {name: value}))  # type: ignore[arg-type]


def test_verify_refuses_another_secret_but_accepts_either_of_two() -> None:
    with pytest.raises(signing.SignatureError):
        signing.verify("other", **good())  # type: ignore[arg-type]
    assert signing.verify(["other", SECRET], **good())  # type: ignore[arg-type]


@pytest.mark.parametrize("skew", [-301, 301])
def test_verify_refuses_a_timestamp_outside_the_window(skew: int) -> None:
    with pytest.raises(signing.SignatureError, match="300 s"):
        signing.verify(SECRET, **good(now=NOW + skew))  # type: ignore[arg-type]


@pytest.mark.parametrize("skew", [-300, 300])
def test_verify_accepts_the_edges_of_the_window(skew: int) -> None:
    assert signing.verify(SECRET, **good(now=NOW + skew))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "broken",
    [
        {signing.SIGNATURE: ""},
        {signing.SIGNATURE: "ABC"},
        {signing.NONCE: "short"},
        {signing.NONCE: "x" * 15 + "!"},
        {signing.TIMESTAMP: "2026-01-01T00:00:00Z"},
    ],
)
def test_verify_refuses_malformed_headers(broken: dict[str, str]) -> None:
    with pytest.raises(signing.SignatureError):
        signing.verify(SECRET, **good(headers=headers() | broken))  # type: ignore[arg-type]


def test_verify_refuses_missing_headers() -> None:
    partial = {k: v for k, v in headers().items() if k != signing.NONCE}
    with pytest.raises(signing.SignatureError, match="missing"):
        signing.verify(SECRET, **good(headers=partial))  # type: ignore[arg-type]


def test_signed_auth_signs_what_httpx_sends() -> None:
    request = httpx.Request("POST", "http://svc/claims/%E5%BC%A0?b=2&a=1", json={"名字": "张三"})
    flow = SignedAuth("tax-0123456789ab", SECRET).auth_flow(request)
    signed = next(flow)
    # The server sees the decoded path and the raw query: verification must agree.
    assert signing.verify(
        SECRET,
        method="POST",
        path="/claims/张",
        query=b"b=2&a=1",
        body=signed.content,
        headers=signed.headers,
    )
    assert "s3cr3t" not in repr(SignedAuth("a", SECRET))


def test_a_file_upload_is_signed_as_it_streams(tmp_path: Path) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_bytes(b"id_number,name\n" + "110101199003071234,张三\n".encode() * 50_000)
    with roster.open("rb") as file:
        request = httpx.Request(
            "POST", "http://svc/organisations/u1/rosters", files={"file": ("r.csv", file)}
        )
        signed = next(SignedAuth("hr-0123456789ab", SECRET).sync_auth_flow(request))
        assert not hasattr(signed, "_content")  # never read whole: it still streams from disk
        sent = b"".join(signed.stream)  # type: ignore[arg-type]
    assert len(sent) > roster.stat().st_size
    assert signing.verify(
        SECRET,
        method="POST",
        path="/organisations/u1/rosters",
        query=b"",
        body=sent,
        headers=signed.headers,
    )


def test_nonces_are_fresh_and_well_formed() -> None:
    nonces = {signing.new_nonce() for _ in range(100)}
    assert len(nonces) == 100
    assert all(signing._NONCE.fullmatch(n) for n in nonces)


def test_a_query_that_is_not_utf8_is_refused_not_crashed() -> None:
    with pytest.raises(signing.SignatureError, match="UTF-8"):
        signing.verify(SECRET, **good(query="a=%FF"))  # type: ignore[arg-type]
    with pytest.raises(signing.SignatureError, match="UTF-8"):
        signing.verify(SECRET, **good(query=b"a=\xff"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("sent", "canonical"),
    [
        (b"/organisations/a%23b", "/organisations/a%23b"),  # '#' inside a segment
        (b"/organisations/a%3Fb", "/organisations/a%3Fb"),  # '?' inside a segment
        (b"/organisations/a%5Cb", "/organisations/a%5Cb"),  # '\' inside a segment
        (b"/organisations/a%09b", "/organisations/a%09b"),  # TAB (the service then refuses it)
        (b"/organisations/a%2fb", "/organisations/a/b"),  # an encoded slash is a slash
        (b"/claims/%e5%bc%a0", "/claims/%E5%BC%A0"),  # lower-case hex is the same path
    ],
)
def test_the_path_is_canonicalised_from_the_bytes_as_sent(sent: bytes, canonical: str) -> None:
    assert signing.canonical_path(sent) == canonical
    assert signing.canonical_path(sent.decode()) == canonical


def test_vector_with_reserved_characters_in_a_segment() -> None:
    # docs/departments.md, third vector: GET /organisations/a%23b%3Fc, no query, no body.
    canonical = signing.canonical_string(
        "GET", b"/organisations/a%23b%3Fc", b"", "1767225600", "abcdefghijklmnop", b""
    )
    assert canonical.split("\n")[2] == "/organisations/a%23b%3Fc"
    assert signing.signature(SECRET, canonical) == VECTOR_3


def test_the_reference_client_signs_the_target_it_sends() -> None:
    request = httpx.Request("GET", "http://svc/organisations/a%23b%3Fc?x=1")
    signed = next(SignedAuth("tax-0123456789ab", SECRET).auth_flow(request))
    assert signing.verify(
        SECRET,
        method="GET",
        path=b"/organisations/a%23b%3Fc",
        query=b"x=1",
        body=b"",
        headers=signed.headers,
    )


VECTOR_3 = "1a100e473582d11da40f0234443b39c1de47a700bd57441ac1eb40e380838714"  # openssl agrees
