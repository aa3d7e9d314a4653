"""Enrolling touches the class's counters and the member's own row, never the whole class.

A class with a capacity keeps how many enrolments hold a seat and how many wait on its row, under
the row lock every seat decision takes; a class without capacity keeps none (NULL), so enrolments
in a city-wide online lecture do not queue on one row. Places in line come from one sequence
instead of each class's highest place plus one (which needed every enrolment of the class); it
starts after every place already taken, so a member enrolling again still joins the back.
"""

from shared.migrations import run_sql

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    run_sql(
        """
        ALTER TABLE classes ADD COLUMN seats_held integer, ADD COLUMN waitlisted integer;
        UPDATE classes c SET
            seats_held = (SELECT count(*) FROM enrolments e WHERE e.class_id = c.class_id
                          AND e.status IN ('pending_approval', 'confirmed', 'offered')),
            waitlisted = (SELECT count(*) FROM enrolments e WHERE e.class_id = c.class_id
                          AND e.status = 'waitlisted')
        WHERE c.capacity IS NOT NULL;
        ALTER TABLE classes ADD CONSTRAINT classes_counted_with_capacity
            CHECK ((capacity IS NULL) = (seats_held IS NULL)
                   AND (capacity IS NULL) = (waitlisted IS NULL)
                   AND seats_held <= capacity);

        CREATE SEQUENCE enrolment_places AS integer;
        SELECT setval('enrolment_places', coalesce(max(sequence), 0) + 1, false) FROM enrolments;
        """
    )
