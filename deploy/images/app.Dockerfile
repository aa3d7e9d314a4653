# Gonghui's services and the WeChat simulator: one image of the code and the locked dependencies
# (target `app`), the simulator's (target `wechat_simulator`), and per service a thin image on
# top of `app` that only names the service (deploy/containers/images writes its three lines:
# literal values, as buildah's layer cache does not tell build arguments apart), so ops can
# deploy each service on its own (`localhost/gonghui/<service>`). deploy/containers/images
# stages the build context (only the paths it copies) and builds them all.
# The role is the command: `python -m services.<name> --role api|worker|all` (docker-compose.yml).

# The official Python image where a registry answers; deploy/containers/images passes the
# Debian base it made with debootstrap (no Python in it: Debian's python3, 3.11 on bookworm).
ARG BASE=docker.io/library/python:3.11-slim-bookworm

FROM ${BASE} AS runtime
RUN set -eu; \
    if ! command -v python3 >/dev/null; then \
        apt-get update -q; \
        apt-get install -y -q --no-install-recommends python3 ca-certificates; \
        rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb; \
    fi; \
    ln -sf "$(command -v python3)" /usr/local/bin/python

# uv installs exactly what uv.lock says; it and pip stay in this stage.
FROM runtime AS build
ARG UV_VERSION=0.13.9
RUN set -eu; \
    if ! python3 -c 'import ensurepip' 2>/dev/null; then \
        apt-get update -q; \
        apt-get install -y -q --no-install-recommends python3-venv; \
    fi
# The build machine's extra CAs (a TLS-inspecting proxy); nothing to do where there are none.
COPY certs/ /usr/local/share/ca-certificates/
RUN if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then update-ca-certificates >/dev/null; fi
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_NATIVE_TLS=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=python3 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/opt/gonghui/venv
RUN python3 -m venv /opt/uv && /opt/uv/bin/pip install -q --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /opt/gonghui/app
COPY pyproject.toml uv.lock ./
RUN /opt/uv/bin/uv sync --frozen --no-dev --no-install-project --no-cache

FROM runtime AS app
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/opt/gonghui/app \
    PATH=/opt/gonghui/venv/bin:$PATH
COPY --from=build /opt/gonghui/venv /opt/gonghui/venv
WORKDIR /opt/gonghui/app
COPY shared ./shared
COPY services ./services
COPY wechat_simulator ./wechat_simulator
COPY deploy/__init__.py deploy/simulator_config.py ./deploy/
COPY deploy/images/health.py /opt/gonghui/health.py
# Never root: the services need no privilege; the roster spool is the only writable path.
RUN useradd --system --uid 10001 --no-create-home gonghui \
    && mkdir -p /var/lib/gonghui/rosters && chown gonghui /var/lib/gonghui/rosters
USER gonghui
# /readyz of whichever process runs here (api and worker roles both answer it); the simulator's
# compose service names its own URL.
HEALTHCHECK --interval=5s --timeout=5s --start-period=60s --retries=12 \
    CMD ["python", "/opt/gonghui/health.py"]

# The WeChat simulator standing in for api.weixin.qq.com (compose adds --callback-url).
FROM app AS wechat_simulator
ENV GONGHUI_SERVICE=wechat_simulator
HEALTHCHECK --interval=5s --timeout=5s --start-period=30s --retries=12 \
    CMD ["python", "/opt/gonghui/health.py", "http://127.0.0.1:8090/_sim/stats"]
ENTRYPOINT ["/bin/sh", "-c", "python -m deploy.simulator_config /tmp/wechat-sim.json >/dev/null && exec python -m wechat_simulator --host 0.0.0.0 --port 8090 --config /tmp/wechat-sim.json \"$@\"", "wechat_simulator"]
