#!/usr/bin/env bash
# Lifecycle hook (before_switch): checks the new release on its own port before
# nginx sends it traffic. A non-zero exit stops the deployment; traffic stays
# where it was.
#
#   hooks: { before_switch: [hooks/smoke-test.sh] }                      health and /
#   hooks: { before_switch: [hooks/smoke-test.sh, /, /api/products] }    health and these paths
#
# Environment from pushdeploy: DEPLOY_PORT (required), DEPLOY_APP, DEPLOY_VERSION,
# DEPLOY_SLOT. SMOKE_HEALTH_PATH overrides /actuator/health.
set -euo pipefail

port=${DEPLOY_PORT:-}
if [[ ! $port =~ ^[0-9]{1,5}$ ]]; then
    echo "smoke-test: DEPLOY_PORT='$port' is not a port (run by pushdeploy as a lifecycle hook)" >&2
    exit 2
fi
base="http://127.0.0.1:$port"
health_path=${SMOKE_HEALTH_PATH:-/actuator/health}
label="${DEPLOY_APP:-app}${DEPLOY_VERSION:+ $DEPLOY_VERSION} on port $port${DEPLOY_SLOT:+ ($DEPLOY_SLOT)}"
failures=0

# Prints "STATUS BODY" for a GET; status 000 when nothing answered.
fetch() {
    local output
    output=$(curl --silent --show-error --max-time 10 --write-out '\n%{http_code}' "$base$1" 2>&1) || true
    printf '%s %s' "${output##*$'\n'}" "${output%$'\n'*}"
}

result=$(fetch "$health_path")
status=${result%% *}
body=${result#* }
if [[ $status == 200 && $body == *'"UP"'* ]]; then
    echo "smoke-test: $label: $health_path is UP"
else
    echo "smoke-test: $label: $health_path answered $status: ${body:0:300}" >&2
    failures=$((failures + 1))
fi

paths=("$@")
[[ ${#paths[@]} -gt 0 ]] || paths=(/)
for path in "${paths[@]}"; do
    result=$(fetch "$path")
    status=${result%% *}
    if [[ $status =~ ^[23][0-9][0-9]$ ]]; then
        echo "smoke-test: $label: $path answered $status"
    else
        echo "smoke-test: $label: $path answered $status: ${result#* }" | cut -c1-400 >&2
        failures=$((failures + 1))
    fi
done

if [[ $failures -gt 0 ]]; then
    echo "smoke-test: $label is not healthy ($failures failed checks)" >&2
    exit 1
fi
