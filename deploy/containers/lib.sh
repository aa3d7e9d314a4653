# Shared by deploy/containers/images and deploy/containers/stack (sourced, not run).
# Names, the podman socket docker-compose talks to, and small output helpers.

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CONTAINERS="$REPO/deploy/containers"
IMAGES_DIR="$REPO/deploy/images"
VAR="$REPO/var"
RUN_DIR="$VAR/run"
LOG_DIR="$VAR/log/stack"

# What the compose file runs: every service of services/, the simulator, the two servers and
# Prometheus.
SERVICES=(membership mutual_aid training notifications union_funds)
PREFIX=localhost/gonghui
BASE_IMAGE="$PREFIX/debian:bookworm"
APP_IMAGE="$PREFIX/app:latest"
KAFKA_IMAGE="$PREFIX/kafka:latest"
POSTGRES_IMAGE="$PREFIX/postgres:latest"
SIMULATOR_IMAGE="$PREFIX/wechat_simulator:latest"
PROMETHEUS_IMAGE="$PREFIX/prometheus:latest"
service_image() { echo "$PREFIX/$1:latest"; }

# podman's Docker-compatible API, for docker-compose 1.29 (there is no Docker engine here).
SOCKET=/run/podman/podman.sock
export DOCKER_HOST="unix://$SOCKET"
export COMPOSE_PROJECT_NAME=gonghui-stack
COMPOSE_FILE="$REPO/docker-compose.yml"

say() { printf '[%s] %s\n' "$(basename "$0")" "$*"; }
die() { printf '[%s] ERROR: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

# Milliseconds since the epoch from bash's own clock; "12.3 s" from milliseconds.
now_ms() { local us="${EPOCHREALTIME/[.,]/}"; echo $((us / 1000)); }
fmt_ms() { printf '%d.%d s' $(($1 / 1000)) $((($1 % 1000) / 100)); }

AS_ROOT=()
[[ $EUID -eq 0 ]] || AS_ROOT=(sudo)
as_root() { "${AS_ROOT[@]}" "$@"; }
pm() { as_root podman "$@"; }
