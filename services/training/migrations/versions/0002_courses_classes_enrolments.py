"""Members as training knows them, courses, classes with sessions, enrolments and their progress.

The class row is the lock every seat decision takes (``SELECT ... FOR UPDATE``); the unique
``(class_id, member_id)`` is the safety net under it: one enrolment per member per class even if a
code path ever forgot the lock.
"""

from shared.migrations import run_sql

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    run_sql(
        """
        CREATE TABLE members (
            member_id text PRIMARY KEY,
            name text NOT NULL,
            status text NOT NULL CHECK (status IN ('active', 'suspended', 'left')),
            union_id text NOT NULL,
            union_path text[] NOT NULL,
            categories text[] NOT NULL DEFAULT '{}',
            is_cadre boolean NOT NULL DEFAULT false,
            updated_at timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE courses (
            course_id text PRIMARY KEY,
            title text NOT NULL,
            kind text NOT NULL,
            provider text NOT NULL,
            description text NOT NULL DEFAULT '',
            audience_kind text NOT NULL,
            audience_target text,
            min_attendance_percent integer,
            pass_mark numeric,
            min_watched_minutes integer,
            created_at timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE classes (
            class_id text PRIMARY KEY,
            course_id text NOT NULL REFERENCES courses,
            name text NOT NULL,
            capacity integer CHECK (capacity IS NULL OR capacity > 0),
            enrolment_opens_at timestamptz NOT NULL,
            enrolment_closes_at timestamptz NOT NULL,
            waitlist_enabled boolean NOT NULL,
            promotion text NOT NULL,
            offer_hours integer NOT NULL,
            requires_approval boolean NOT NULL,
            releases_no_shows boolean NOT NULL,
            no_shows_released boolean NOT NULL DEFAULT false,
            -- Copies of what the sessions say, for reports by year and the no-show sweep.
            starts_at timestamptz NOT NULL,
            ends_at timestamptz NOT NULL,
            first_session_ends_at timestamptz NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX classes_course ON classes (course_id);
        CREATE INDEX classes_no_shows_due ON classes (first_session_ends_at)
            WHERE releases_no_shows AND NOT no_shows_released;

        -- Session ids are globally unique: the check-in code is a MAC of the session id alone.
        CREATE TABLE sessions (
            session_id text PRIMARY KEY,
            class_id text NOT NULL REFERENCES classes,
            starts_at timestamptz NOT NULL,
            ends_at timestamptz NOT NULL,
            venue text,
            online_link text
        );
        CREATE INDEX sessions_class ON sessions (class_id);

        CREATE TABLE enrolments (
            enrolment_id text PRIMARY KEY,
            class_id text NOT NULL REFERENCES classes,
            member_id text NOT NULL,
            member_name text NOT NULL,
            union_id text NOT NULL,
            union_path text[] NOT NULL,
            status text NOT NULL CHECK (status IN (
                'pending_approval', 'confirmed', 'waitlisted', 'offered', 'cancelled', 'rejected'
            )),
            sequence integer NOT NULL,
            enrolled_at timestamptz NOT NULL,
            offer_expires_at timestamptz,
            cancel_reason text,
            cancelled_by text,
            watched_minutes integer NOT NULL DEFAULT 0,
            score numeric,
            completed_on date,
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT enrolments_one_per_member UNIQUE (class_id, member_id),
            CONSTRAINT enrolments_one_per_place UNIQUE (class_id, sequence)
        );
        CREATE INDEX enrolments_active_member ON enrolments (member_id)
            WHERE status IN ('pending_approval', 'confirmed', 'waitlisted', 'offered');
        CREATE INDEX enrolments_offers_due ON enrolments (offer_expires_at)
            WHERE status = 'offered';
        CREATE INDEX enrolments_union_path ON enrolments USING gin (union_path);
        CREATE INDEX enrolments_union ON enrolments (union_id);

        CREATE TABLE check_ins (
            enrolment_id text NOT NULL REFERENCES enrolments,
            session_id text NOT NULL REFERENCES sessions,
            method text NOT NULL CHECK (method IN ('staff', 'code')),
            recorded_at timestamptz NOT NULL,
            PRIMARY KEY (enrolment_id, session_id)
        );

        CREATE TABLE certificates (
            number text PRIMARY KEY,
            enrolment_id text NOT NULL UNIQUE REFERENCES enrolments,
            member_id text NOT NULL,
            holder_name text NOT NULL,
            course_id text NOT NULL,
            course_title text NOT NULL,
            class_id text NOT NULL,
            class_name text NOT NULL,
            completed_on date NOT NULL,
            issued_on date NOT NULL
        );

        -- The streaming side resends a report it is unsure of: its id makes the resend harmless.
        CREATE TABLE viewing_reports (
            report_id text PRIMARY KEY,
            enrolment_id text NOT NULL REFERENCES enrolments,
            minutes integer NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now()
        );
        """
    )
