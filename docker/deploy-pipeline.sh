#!/usr/bin/env bash
# Stand the platform up on this Docker host: build the image, start the stack, wait until every
# service is healthy, validate the definitions inside the code container, print the UI address.
# It stops at the first problem and says which step failed.
#
#   docker/deploy-pipeline.sh            (MLPLATFORM_DEPLOY_TIMEOUT=seconds to wait, default 300)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ENV_FILE="${MLPLATFORM_ENV_FILE:-$HERE/.env}"
# Secret files made from the env file (compose secrets read them from here).
SECRETS_DIR="${MLPLATFORM_SECRETS_DIR:-$HERE/secrets}"
export MLPLATFORM_SECRETS_DIR="$SECRETS_DIR"
TIMEOUT="${MLPLATFORM_DEPLOY_TIMEOUT:-300}"
SERVICES=(docker-proxy docker-proxy-stop postgresql mlflow mlflow-users user-code webserver
    webserver-viewer daemon metrics-exporter prometheus login-proxy)
# Services that do their work and exit: done when they exited with status 0.
ONE_SHOT=(mlflow-users)

step() { echo "deploy-pipeline: $*"; }
fail() {
    echo "deploy-pipeline: FAILED: $*" >&2
    exit 1
}
random_password() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

command -v docker >/dev/null || fail "the Docker client is not installed"
if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null; then
    COMPOSE=(docker-compose)
    # v1 builds with the classic builder unless told: the Dockerfile needs BuildKit (cache mounts,
    # Dockerfile.dockerignore).
    export DOCKER_BUILDKIT=1 COMPOSE_DOCKER_CLI_BUILD=1
else
    fail "neither the 'docker compose' plugin nor 'docker-compose' is installed"
fi
docker info >/dev/null 2>&1 || fail "cannot reach the Docker engine (is it running, may this user use it?)"

if [ ! -f "$ENV_FILE" ]; then
    step "creating $ENV_FILE from .env.example, with fresh passwords"
    (
        umask 077
        cp "$HERE/.env.example" "$ENV_FILE"
        # A different secret for every *_PASSWORD and *_SECRET_KEY line (one role, one password).
        sed -n 's/^\([A-Z_]*\(PASSWORD\|SECRET_KEY\)\)=.*/\1/p' "$HERE/.env.example" |
            while read -r key; do
                sed -i "s/^${key}=.*/${key}=$(random_password)/" "$ENV_FILE"
            done
    )
fi
if grep -Eq '^[A-Z_]*(PASSWORD|SECRET_KEY)=(change-me)?$' "$ENV_FILE"; then
    fail "$ENV_FILE has an empty or 'change-me' password; set real ones"
fi
env_value() { sed -n "s/^$1=//p" "$ENV_FILE" | tail -n 1; }
ui_port="$(env_value DAGSTER_UI_PORT)"
viewer_port="$(env_value DAGSTER_VIEWER_PORT)"
executor="$(env_value MLPLATFORM_EXECUTOR)"
mlflow_port="$(env_value MLFLOW_UI_PORT)"
# The API guards reach the socket as its group, whose id differs between hosts.
DOCKER_SOCKET_GID="${DOCKER_SOCKET_GID:-$(env_value DOCKER_SOCKET_GID)}"
if [ -z "$DOCKER_SOCKET_GID" ]; then
    DOCKER_SOCKET_GID="$(stat -c %g /var/run/docker.sock 2>/dev/null)" \
        || fail "cannot read the group of /var/run/docker.sock; set DOCKER_SOCKET_GID in $ENV_FILE"
fi
export DOCKER_SOCKET_GID

# The UI's logins as the login proxy reads them: htpasswd lines (SHA-256 crypt), in files that
# reach only that container (compose secrets). Made again on every deploy, from docker/.env.
htpasswd_line() {
    local user="$1" password="$2"
    [ -n "$user" ] && [ -n "$password" ] || fail "$ENV_FILE lacks a UI username or password"
    printf '%s:%s\n' "$user" "$(printf '%s' "$password" | openssl passwd -5 -stdin)"
}
command -v openssl >/dev/null || fail "openssl is needed to hash the UI passwords"
(
    umask 077
    mkdir -p "$SECRETS_DIR"
    htpasswd_line "$(env_value DAGSTER_UI_USERNAME)" "$(env_value DAGSTER_UI_PASSWORD)" \
        >"$SECRETS_DIR/ui_operators.htpasswd"
    # Operators may use the read-only UI too.
    {
        htpasswd_line "$(env_value DAGSTER_VIEWER_USERNAME)" "$(env_value DAGSTER_VIEWER_PASSWORD)"
        cat "$SECRETS_DIR/ui_operators.htpasswd"
    } >"$SECRETS_DIR/ui_viewers.htpasswd"
    # nginx's workers read them as another user than the one that made them.
    chmod 644 "$SECRETS_DIR/"*.htpasswd
)

COMPOSE+=(--project-directory "$HERE" -f "$HERE/docker-compose.yaml")
if [ "$executor" = docker ]; then
    # Step containers are started from run containers: only then do runs reach the Docker API.
    step "MLPLATFORM_EXECUTOR=docker: run containers get the Docker API (through the proxy)"
    COMPOSE+=(-f "$HERE/docker-compose.step-containers.yaml")
fi
COMPOSE+=(--env-file "$ENV_FILE")

step "checking docker-compose.yaml"
"${COMPOSE[@]}" config -q || fail "docker-compose.yaml or $ENV_FILE is invalid"

step "building the platform image"
"${COMPOSE[@]}" build user-code || fail "the image did not build"

step "starting ${SERVICES[*]}"
"${COMPOSE[@]}" up -d --no-build --remove-orphans || fail "the stack did not start"

step "waiting up to ${TIMEOUT}s for every service to be healthy"
deadline=$((SECONDS + TIMEOUT))
for service in "${SERVICES[@]}"; do
    while :; do
        container="$("${COMPOSE[@]}" ps -q "$service" || true)"
        state="missing"
        if [ -n "$container" ]; then
            state="$(docker inspect -f \
                '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' \
                "$container" || echo missing)"
            if [ "$state" = exited ] && [[ " ${ONE_SHOT[*]} " == *" $service "* ]]; then
                exit_code="$(docker inspect -f '{{.State.ExitCode}}' "$container" || echo 1)"
                [ "$exit_code" = 0 ] && state="done"
            fi
        fi
        case "$state" in
            healthy | done) step "  $service: $state"; break ;;
            unhealthy | exited | dead)
                "${COMPOSE[@]}" logs --tail 50 "$service" >&2 || true
                fail "$service is $state (its last log lines are above)" ;;
        esac
        if [ "$SECONDS" -ge "$deadline" ]; then
            "${COMPOSE[@]}" logs --tail 50 "$service" >&2 || true
            fail "$service not healthy after ${TIMEOUT}s (state: $state)"
        fi
        sleep 3
    done
done

step "validating the definitions inside the user-code container"
"${COMPOSE[@]}" exec -T user-code dagster definitions validate -m mlplatform.definitions -a defs \
    || fail "the definitions do not load in the user-code container"

step "ready"
echo "  Dagster UI:  http://127.0.0.1:${ui_port:-3000}  (login: DAGSTER_UI_USERNAME in $ENV_FILE)"
echo "  Read-only:   http://127.0.0.1:${viewer_port:-3001}  (login: DAGSTER_VIEWER_USERNAME)"
echo "  MLflow UI:   http://127.0.0.1:${mlflow_port:-5000}"
echo "  Prometheus:  ${COMPOSE[*]} exec prometheus wget -qO- http://127.0.0.1:9090/api/v1/targets"
