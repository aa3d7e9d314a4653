# PostgreSQL 15 from Debian's package, with the roles, schemas and grants of
# deploy/local/postgres-init.sql (the same file deploy/local/infra runs), applied on every start
# as infra does (it is idempotent), so a kept volume gets a new service's role too.
ARG BASE=docker.io/library/debian:bookworm-slim
FROM ${BASE}
RUN apt-get update -q \
    && apt-get install -y -q --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
COPY deploy/local/postgres-init.sql /opt/gonghui/postgres-init.sql
COPY deploy/images/postgres-start /opt/gonghui/postgres-start
RUN mkdir -p "$PGDATA" /run/postgresql && chown postgres "$PGDATA" /run/postgresql
USER postgres
# Initialised at build, so a container without a volume starts at once; a fresh named volume
# gets this copy.
RUN /opt/gonghui/postgres-start init
VOLUME /var/lib/postgresql/data
EXPOSE 5432
HEALTHCHECK --interval=2s --timeout=5s --start-period=30s --retries=30 \
    CMD ["pg_isready", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", "gonghui"]
ENTRYPOINT ["/opt/gonghui/postgres-start"]
