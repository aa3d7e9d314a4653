# Single-node Kafka (KRaft, broker and controller in one JVM) with the same jars, settings and
# topic helper as deploy/local/infra: the jars Maven fetched into .cache/kafka/libs, the compiled
# EnsureTopics, deploy/local/kafka/server.properties.template and deploy/local/topics.txt.
# deploy/containers/images stages the context (after `deploy/local/infra fetch`) and builds it.
ARG BASE=docker.io/library/debian:bookworm-slim
FROM ${BASE}
RUN apt-get update -q \
    && apt-get install -y -q --no-install-recommends openjdk-17-jre-headless \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
COPY .cache/kafka/libs /opt/kafka/libs
COPY .cache/kafka/classes /opt/kafka/classes
COPY deploy/local/topics.txt deploy/local/kafka/server.properties.template \
     deploy/local/kafka/tools-log4j2.properties /opt/kafka/config/
COPY deploy/images/kafka-start /opt/kafka/kafka-start
RUN useradd --system --uid 10002 --no-create-home kafka \
    && mkdir -p /var/lib/kafka/data && chown kafka /var/lib/kafka/data /opt/kafka/config
USER kafka
VOLUME /var/lib/kafka/data
EXPOSE 9092
# The broker binds its port only once it has started (metadata caught up, unfenced), so an open
# port means it serves; bash's /dev/tcp costs no JVM. The topics are the kafka-topics service's.
HEALTHCHECK --interval=3s --timeout=3s --start-period=60s --retries=20 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9092"]
# `kafka-start` runs the broker; `kafka-start topics <bootstrap>` creates the missing topics.
ENTRYPOINT ["/opt/kafka/kafka-start"]
