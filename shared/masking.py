"""Masking of personal data (resident ID numbers, mobile numbers) in logs and responses."""

from __future__ import annotations

import logging
import re

_ID_NUMBER = re.compile(r"(?<![0-9])([1-8][0-9]{2})[0-9]{11}([0-9]{3}[0-9Xx])(?![0-9])")
_MOBILE = re.compile(r"(?<![0-9])(1[3-9][0-9])[0-9]{4}([0-9]{4})(?![0-9])")


def mask_id_number(value: str) -> str:
    """``110105194912310021`` -> ``110***********0021``: enough for a person to recognise."""
    return value[:3] + "*" * (len(value) - 7) + value[-4:] if len(value) > 7 else "*" * len(value)


def mask_mobile(value: str) -> str:
    return value[:3] + "****" + value[-4:] if len(value) == 11 else "*" * len(value)


def mask_name(value: str) -> str:
    """``张三丰`` -> ``张**``: the family name stays, as Chinese services show it."""
    return value[:1] + "*" * (len(value) - 1)


def mask_text(text: str) -> str:
    text = _ID_NUMBER.sub(lambda m: m.group(1) + "*" * 11 + m.group(2), text)
    return _MOBILE.sub(lambda m: m.group(1) + "****" + m.group(2), text)


class MaskingFilter(logging.Filter):
    """Masks ID and mobile numbers in every log record, whatever the caller formatted into it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_text(record.getMessage())
        record.args = None
        return True


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.addFilter(MaskingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
