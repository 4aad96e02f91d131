#!/usr/bin/env bash
# Lifecycle hook (after_switch, after_rollback, on_failure): one line about the
# deployment, and, when NOTIFY_URL is set, the same as JSON posted there (a chat
# webhook, for example). A failed post only warns: a notification never
# changes the outcome of a deployment.
#
#   hooks: { after_switch: [hooks/notify.sh], on_failure: [hooks/notify.sh, failed] }
#
# Environment from pushdeploy: DEPLOY_ID, DEPLOY_APP, DEPLOY_VERSION,
# DEPLOY_COMMIT, DEPLOY_PORT, DEPLOY_SLOT. The first argument, if any, is the
# event (default: live).
set -uo pipefail

event=${1:-live}
app=${DEPLOY_APP:-?}
version=${DEPLOY_VERSION:-?}
commit=${DEPLOY_COMMIT:-?}
slot=${DEPLOY_SLOT:-?}
id=${DEPLOY_ID:-?}
port=${DEPLOY_PORT:-?}

echo "pushdeploy: $app $version (commit ${commit:0:12}) $event on slot $slot, port $port, deployment $id"

[[ -n ${NOTIFY_URL:-} ]] || exit 0

json_string() { # a JSON string literal for $1
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/\\n}
    s=${s//$'\r'/\\r}
    s=${s//$'\t'/\\t}
    s=$(printf '%s' "$s" | tr -d '\000-\037')
    printf '"%s"' "$s"
}

text="$app $version (commit ${commit:0:12}) $event on slot $slot"
payload=$(printf '{"text": %s, "app": %s, "version": %s, "commit": %s, "slot": %s, "deployment": %s, "event": %s}' \
    "$(json_string "$text")" "$(json_string "$app")" "$(json_string "$version")" "$(json_string "$commit")" \
    "$(json_string "$slot")" "$(json_string "$id")" "$(json_string "$event")")

if ! curl --silent --show-error --fail --max-time 10 -X POST -H 'Content-Type: application/json' \
    --data "$payload" "$NOTIFY_URL" >/dev/null; then
    echo "notify: warning: could not post to NOTIFY_URL" >&2
fi
exit 0
