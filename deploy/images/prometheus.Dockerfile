# Prometheus from Debian's package (the same prometheus deploy/local/prometheus installs on the
# host), for the compose stack. The configuration and the alert rules are not baked in:
# docker-compose.yml mounts deploy/prometheus/compose.yml as /etc/prometheus/prometheus.yml and
# alerts.yml beside it.
ARG BASE=docker.io/library/debian:bookworm-slim
FROM ${BASE}
# The package's postinst makes the prometheus user; it recommends the node exporter (not wanted).
# The web UI's moment-timezone comes with 214 MB of zone files as separate JSON it never loads
# (its pages link moment-timezone-with-data*.js): they go.
RUN apt-get update -q \
    && apt-get install -y -q --no-install-recommends prometheus \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
        /usr/share/javascript/moment-timezone/data \
    && install -d -o prometheus -g prometheus /var/lib/prometheus
COPY deploy/images/prometheus-ready /opt/gonghui/prometheus-ready
USER prometheus
VOLUME /var/lib/prometheus
EXPOSE 9090
HEALTHCHECK --interval=3s --timeout=3s --start-period=30s --retries=20 \
    CMD ["/opt/gonghui/prometheus-ready"]
ENTRYPOINT ["/usr/bin/prometheus", "--config.file=/etc/prometheus/prometheus.yml", \
    "--storage.tsdb.path=/var/lib/prometheus/metrics2", "--web.listen-address=0.0.0.0:9090"]
