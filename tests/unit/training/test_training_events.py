"""The training events in the catalogue: names, source, key, and the aggregate that records them."""

from __future__ import annotations

from datetime import date

from services.training.domain import Actor, EnrolmentWindow, TrainingClass
from shared.events import training
from shared.events.base import CATALOGUE
from shared.events.training import ClassScheduled, EnrolmentCancelled, EnrolmentEvent


def training_types():
    return {name: cls for name, cls in CATALOGUE.items() if cls.source == training.SOURCE}


def test_every_training_event_is_catalogued_under_the_training_source():
    types = training_types()
    assert {
        "gonghui.training.class.scheduled",
        "gonghui.training.enrolment.confirmed",
        "gonghui.training.enrolment.waitlisted",
        "gonghui.training.enrolment.promoted",
        "gonghui.training.enrolment.offered",
        "gonghui.training.enrolment.cancelled",
        "gonghui.training.attendance.recorded",
        "gonghui.training.course.completed",
        "gonghui.training.certificate.issued",
    } <= set(types)
    assert all(name.startswith("gonghui.training.") for name in types)


def test_enrolment_events_carry_what_a_notification_needs_and_are_keyed_by_class():
    for cls in training_types().values():
        if issubclass(cls, EnrolmentEvent):
            fields = set(cls.model_fields)
            assert {"member_id", "class_id", "course_title", "class_name"} <= fields, cls


def test_scheduling_a_class_records_class_scheduled(build):
    cls = TrainingClass.schedule(
        "class-9",
        build.course(),
        "第九期",
        build.sessions(count=3),
        capacity=30,
        window=EnrolmentWindow(build.opens, build.closes),
    )
    [event] = cls.events
    assert isinstance(event, ClassScheduled)
    assert (event.subject(), event.capacity, event.session_count) == ("class-9", 30, 3)
    assert event.ends_at == cls.sessions[-1].ends_at


def test_events_survive_the_wire_and_ignore_fields_they_do_not_know(build):
    cls = build.training_class(capacity=1)
    cls.enrol(build.member(1), build.now)
    cls.cancel("m1", Actor.STAFF, "class merged", build.now)
    event = cls.events[-1]
    assert isinstance(event, EnrolmentCancelled) and event.subject() == "class-1"

    wire = event.model_dump(mode="json") | {"added_in_a_later_version": date.today().isoformat()}
    assert EnrolmentCancelled.model_validate(wire) == event
