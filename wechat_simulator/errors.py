"""WeChat errcodes the simulator answers with, and their errmsg texts.

WeChat reports every API failure as HTTP 200 with a non-zero ``errcode``; the texts below follow
the ones WeChat returns (clients must key on the code, never on the text, so the simulator appends
a ``rid`` suffix like WeChat does, which also catches clients that compare errmsg verbatim).
"""

from __future__ import annotations

from typing import Final

OK: Final = 0
SYSTEM_ERROR: Final = -1
INVALID_CREDENTIAL: Final = 40001
INVALID_GRANT_TYPE: Final = 40002
INVALID_OPENID: Final = 40003
INVALID_APPID: Final = 40013
INVALID_ACCESS_TOKEN: Final = 40014
INVALID_TEMPLATE_ID: Final = 40037
INVALID_APPSECRET: Final = 40125
IP_NOT_WHITELISTED: Final = 40164
ACCESS_TOKEN_MISSING: Final = 41001
APPID_MISSING: Final = 41002
APPSECRET_MISSING: Final = 41004
ACCESS_TOKEN_EXPIRED: Final = 42001
REQUIRE_SUBSCRIBE: Final = 43004
USER_REFUSED: Final = 43101
EMPTY_POST_DATA: Final = 44002
DAILY_QUOTA: Final = 45009
MINUTE_QUOTA: Final = 45011
DATA_FORMAT_ERROR: Final = 47001
ARGUMENT_INVALID: Final = 47003
API_UNAUTHORIZED: Final = 48001
CGI_PATH_NOT_FOUND: Final = 76021

ERRMSG: Final[dict[int, str]] = {
    SYSTEM_ERROR: "system error",
    INVALID_CREDENTIAL: "invalid credential, access_token is invalid or not latest",
    INVALID_GRANT_TYPE: "invalid grant_type",
    INVALID_OPENID: "invalid openid",
    INVALID_APPID: "invalid appid",
    INVALID_ACCESS_TOKEN: "invalid access_token",
    INVALID_TEMPLATE_ID: "invalid template_id",
    INVALID_APPSECRET: "invalid appsecret",
    IP_NOT_WHITELISTED: "invalid ip, not in whitelist",
    ACCESS_TOKEN_MISSING: "access_token missing",
    APPID_MISSING: "appid missing",
    APPSECRET_MISSING: "appsecret missing",
    ACCESS_TOKEN_EXPIRED: "access_token expired",
    REQUIRE_SUBSCRIBE: "require subscribe",
    USER_REFUSED: "user refuse to accept the msg",
    EMPTY_POST_DATA: "empty post data",
    DAILY_QUOTA: "reach max api daily quota limit",
    MINUTE_QUOTA: "api minute-quota reach limit mustslower retry next minute",
    DATA_FORMAT_ERROR: "data format error",
    ARGUMENT_INVALID: "argument invalid!",
    API_UNAUTHORIZED: "api unauthorized",
    CGI_PATH_NOT_FOUND: "cgi_path not found",
}


def errmsg_for(errcode: int) -> str:
    return ERRMSG.get(errcode, f"simulated error {errcode}")


class WeChatError(Exception):
    """A WeChat API failure: the route turns it into ``{"errcode", "errmsg"}`` with HTTP 200."""

    def __init__(self, errcode: int, errmsg: str | None = None) -> None:
        self.errcode = errcode
        self.errmsg = errmsg if errmsg is not None else errmsg_for(errcode)
        super().__init__(f"{errcode}: {self.errmsg}")
