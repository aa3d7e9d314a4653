-- Gonghui database, roles and schemas: the ONE source for both
--   * deploy/local/infra up   (psql as the postgres OS user over the local socket), and
--   * docker-compose.yml      (mounted into /docker-entrypoint-initdb.d, run on first start).
-- Run it with psql as a superuser: it uses psql meta-commands (\gexec, \connect).
-- Idempotent: every statement may run again on a database that already has everything.
--
-- The model: one database `gonghui`, one schema per service, owned by a login role of the same
-- name. A service role can touch ONLY its own schema: PUBLIC loses every privilege on the
-- database and on schema public, each service role gets CONNECT and nothing else outside its
-- schema. Passwords equal the role names: DEVELOPMENT ONLY.
--
-- `gonghui_test` is the test suite's role: it creates per-test roles and schemas, so it has
-- CREATEROLE, CREATEDB and CREATE on the database, with GRANT OPTION on CONNECT so that it can let
-- the roles it creates connect. (On PostgreSQL 15 CREATEROLE can alter any non-superuser role:
-- acceptable for a local test role, never for production.)

\set ON_ERROR_STOP on
SET client_min_messages = warning;
-- Passwords set below are hashed with this method; pg_hba.conf asks for scram-sha-256 over TCP.
SET password_encryption = 'scram-sha-256';

-- CREATE DATABASE cannot run inside a DO block or a transaction: \gexec runs the generated
-- statement only when the database is missing.
SELECT 'CREATE DATABASE gonghui'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'gonghui')
\gexec

-- Roles are cluster-wide, so they can be created from any database.
DO $$
DECLARE
    svc text;
BEGIN
    FOREACH svc IN ARRAY ARRAY['membership', 'mutual_aid', 'training', 'notifications', 'union_funds'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = svc) THEN
            EXECUTE format('CREATE ROLE %I', svc);
        END IF;
        -- Re-applied every time so that a hand-edited role returns to the known state.
        EXECUTE format(
            'ALTER ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION'
            ' PASSWORD %L', svc, svc);
        EXECUTE format('ALTER ROLE %I SET search_path = %I', svc, svc);
    END LOOP;

    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'gonghui_test') THEN
        CREATE ROLE gonghui_test;
    END IF;
    ALTER ROLE gonghui_test WITH LOGIN NOSUPERUSER CREATEDB CREATEROLE PASSWORD 'gonghui_test';
END
$$;

-- Nobody may connect to (or create temporary tables in) gonghui unless granted here.
REVOKE ALL ON DATABASE gonghui FROM PUBLIC;
GRANT CONNECT ON DATABASE gonghui TO membership, mutual_aid, training, notifications, union_funds;
GRANT CONNECT, CREATE, TEMPORARY ON DATABASE gonghui TO gonghui_test WITH GRANT OPTION;

\connect gonghui
SET client_min_messages = warning;

-- Schema public: no usage, no create for anyone but its owner (the database owner, postgres).
REVOKE ALL ON SCHEMA public FROM PUBLIC;

DO $$
DECLARE
    svc text;
BEGIN
    FOREACH svc IN ARRAY ARRAY['membership', 'mutual_aid', 'training', 'notifications', 'union_funds'] LOOP
        EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', svc, svc);
        EXECUTE format('ALTER SCHEMA %I OWNER TO %I', svc, svc);
        -- The owner has every right on its schema; nobody else gets any.
        EXECUTE format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', svc);
    END LOOP;
END
$$;
