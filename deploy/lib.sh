# Shared by the deploy scripts: paths, the compose command, health waiting.
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
project="${GREGOR_COMPOSE_PROJECT:-gregor}"
# docker-compose v1 if installed, else the `docker compose` v2 plugin (same compose.yaml).
if command -v docker-compose >/dev/null 2>&1; then compose_cmd=(docker-compose); else compose_cmd=(docker compose); fi
compose() { "${compose_cmd[@]}" -p "$project" -f "$repo/deploy/compose.yaml" "$@"; }
# The brokers' host ports (published EXTERNAL listeners); see deploy/compose.yaml.
bootstrap="127.0.0.1:${GREGOR_EXTERNAL_PORT_1:-19092},127.0.0.1:${GREGOR_EXTERNAL_PORT_2:-19093},127.0.0.1:${GREGOR_EXTERNAL_PORT_3:-19094}"
controllers="127.0.0.1:${GREGOR_CONTROLLER_PORT_1:-19191},127.0.0.1:${GREGOR_CONTROLLER_PORT_2:-19192},127.0.0.1:${GREGOR_CONTROLLER_PORT_3:-19193}"
services=(controller-1 controller-2 controller-3 broker-1 broker-2 broker-3)

# Waits until every service's container reports healthy, or fails after $1 seconds.
wait_healthy() {
  local limit="$1" start=$SECONDS
  while :; do
    local unhealthy=()
    for s in "${services[@]}"; do
      local id status
      id=$(compose ps -q "$s" 2>/dev/null || true)
      status=$( [ -n "$id" ] && docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$id" 2>/dev/null || echo missing)
      [ "$status" = healthy ] || unhealthy+=("$s=$status")
    done
    [ ${#unhealthy[@]} -eq 0 ] && return 0
    if (( SECONDS - start > limit )); then
      echo "deploy: not healthy after ${limit}s: ${unhealthy[*]}" >&2
      compose logs --tail=30 >&2 || true
      return 1
    fi
    sleep 1
  done
}
