"""Roll-ups per class, per course and per union subtree and year."""

from __future__ import annotations

from dataclasses import replace

from services.training.domain import (
    Actor,
    Counts,
    facts_of,
    roll_up_by,
    roll_up_class,
    roll_up_union,
)


def busy_class(build):
    """Two seats: m0 attends both sessions and completes, m1 attends one, m2 and m3 wait."""
    cls = build.training_class(capacity=2, sessions=build.sessions(count=2))
    for n in range(4):
        cls.enrol(build.member(n, union_id=f"u-shop-{n % 2}"), build.now)
    for session in cls.sessions:
        cls.check_in_by_staff(session.session_id, "m0", session.starts_at)
    cls.check_in_by_staff("s1", "m1", cls.sessions[0].starts_at)
    cls.cancel("m3", Actor.MEMBER, "moved away", build.now)
    return cls


def test_a_class_roll_up_counts_enrolled_waitlisted_attended_and_completed(build):
    assert roll_up_class(busy_class(build)) == Counts(
        enrolled=2,
        waitlisted=1,
        cancelled=1,
        attended=2,
        attendances=3,
        completed=1,
    )


def test_roll_ups_by_course_add_up_the_classes(build):
    facts = facts_of(busy_class(build))
    other_class = [replace(f, class_id="class-2") for f in facts]
    by_course = roll_up_by(facts + other_class)
    assert by_course["course-1"].enrolled == 4
    assert roll_up_by(facts + other_class, key="class_id")["class-2"].completed == 1


def test_a_union_roll_up_counts_the_subtree_in_the_year_per_union_below_the_root(build):
    facts = facts_of(busy_class(build))
    elsewhere = replace(facts[0], member_id="m-x", union_id="u-far", union_path=("u-city", "u-b"))
    last_year = replace(facts[0], member_id="m-y", year=facts[0].year - 1)

    county = roll_up_union([*facts, elsewhere, last_year], build.county, facts[0].year)

    assert county.total.enrolled == 2 and county.total.completed == 1
    assert set(county.by_child) == {"u-shop-0", "u-shop-1"}
    assert county.by_child["u-shop-0"] == Counts(
        enrolled=1, waitlisted=1, attended=1, attendances=2, completed=1
    )
    city = roll_up_union([*facts, elsewhere, last_year], build.city, facts[0].year)
    assert set(city.by_child) == {build.county, "u-b"}
    assert city.total.enrolled == 3
    # Members of the root union itself are listed under the root.
    shop = roll_up_union(facts, "u-shop-0", facts[0].year)
    assert set(shop.by_child) == {"u-shop-0"}
    assert roll_up_union(facts, "u-nowhere", facts[0].year).total == Counts()
