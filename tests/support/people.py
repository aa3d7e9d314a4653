"""Made-up but well-formed people and employers: resident ID numbers that pass GB 11643, credit
codes that pass GB 32100, mobile numbers. For tests, benchmarks and the demo; nobody real."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, timedelta

from services.membership.identity import mod11_2_check_char
from shared.credit_code import credit_code_check_char

BOZHOU_AREAS = ("341602", "341621", "341622", "341623")  # Qiaocheng, Guoyang, Mengcheng, Lixin
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"


def id_number(serial: int, *, born: date | None = None, female: bool | None = None) -> str:
    """A valid ID number, different for each ``serial`` (up to 4,000 a day of birth x 4 areas)."""
    born = born or date(1970, 1, 1) + timedelta(days=serial // 2000 % 12000)
    sequence = serial % 2000 // 4 * 2  # even
    if female is None:
        female = serial % 2 == 0
    sequence += 0 if female else 1
    area = BOZHOU_AREAS[serial % 4]
    first17 = f"{area}{born:%Y%m%d}{sequence % 1000:03d}"
    return first17 + mod11_2_check_char(first17)


def credit_code(serial: int) -> str:
    """A valid unified social credit code for an enterprise (registered in Bozhou)."""
    first17 = f"91341600{serial:09d}"
    return first17 + credit_code_check_char(first17)


def mobile(serial: int) -> str:
    return f"139{serial % 100_000_000:08d}"


def name(serial: int) -> str:
    return SURNAMES[serial % len(SURNAMES)] + GIVEN[serial // 7 % len(GIVEN)]


def roster_rows(count: int, *, start: int = 0, seed: int = 7) -> Iterator[dict[str, str]]:
    """Roster rows as an HR system exports them; about half migrant workers."""
    rng = random.Random(seed)
    for serial in range(start, start + count):
        yield {
            "id_number": id_number(serial),
            "name": name(serial),
            "mobile": mobile(serial),
            "categories": "migrant_worker" if rng.random() < 0.5 else "",
        }
