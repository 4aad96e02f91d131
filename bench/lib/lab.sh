# bench/lib/lab.sh: the test bed bench/zero-downtime and bench/push-to-live share (sourced, not run).
#
# A temp work dir with: a git repository of examples/demo-app, a private nginx on loopback, a private Gradle
# home (its daemon is stopped at the end), `pushdeploy serve` with a config the caller writes, and a cleanup
# trap that ends everything started here, also on failure or Ctrl-C:
#   pushdeploy (by pid), the app JVMs it started (detached: by the pids in state.json, by process group),
#   the Gradle daemon (`gradle --stop` on the private home), nginx (by its pid file), wrk (by pid),
#   and last any process left whose command line or environment names the work dir (all of them are this
#   run's: the JVMs run jars under it, nginx gets it on its command line, the Gradle daemon and its workers
#   have GRADLE_USER_HOME under it).
#
# Settings read here:
#   BENCH_KEEP=1          keep the work dir (config, logs, state, deployment records)
#   BENCH_SKIP_BUILD=1    use the existing .build/release/pushdeploy instead of `make release-binary`
#   BENCH_PUSHDEPLOY=PATH use this pushdeploy binary (for example .build/debug/pushdeploy); implies no build
#
# The caller sets `bench_name` before sourcing.

lab_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

lab_say() { echo "$bench_name: $*" >&2; }
lab_die() { lab_say "$*"; exit 1; }

for lab_tool in curl git gradle java jq nginx python3; do
    command -v "$lab_tool" >/dev/null || lab_die "$lab_tool is missing (make deps)"
done
lab_nginx_bin=$(command -v nginx)

work=$(mktemp -d "${TMPDIR:-/tmp}/pushdeploy-$bench_name.XXXXXX")
lab_pids=()             # background processes of this shell: pushdeploy, wrk
lab_pushdeploy_pid=""
lab_nginx_started=""
lab_gradle_home="$work/gradle-home"
lab_state="$work/state"

lab_cleanup() {
    local status=$? pid pids
    trap - EXIT INT TERM
    set +e
    # pushdeploy first, so that it starts nothing more; SIGTERM lets it close running deployments.
    if [[ -n $lab_pushdeploy_pid ]]; then
        kill -TERM "$lab_pushdeploy_pid" 2>/dev/null
        for _ in $(seq 1 50); do kill -0 "$lab_pushdeploy_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$lab_pushdeploy_pid" 2>/dev/null
    fi
    for pid in "${lab_pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${lab_pids[@]}"; do wait "$pid" 2>/dev/null; done
    # The app instances: detached process group leaders, recorded in state.json.
    for pid in $(cat "$lab_state"/apps/*/state.json 2>/dev/null | jq -r '.entries[]?.instance.pid // empty' 2>/dev/null); do
        kill -KILL -- "-$pid" 2>/dev/null
        kill -KILL "$pid" 2>/dev/null
    done
    # The Gradle daemon of the private Gradle home.
    if [[ -d $lab_gradle_home ]]; then
        GRADLE_USER_HOME=$lab_gradle_home timeout 30 gradle --offline --stop >/dev/null 2>&1
    fi
    # nginx: a fast stop lets the master end its workers; SIGKILL the lot if it hangs.
    if [[ -n $lab_nginx_started && -f $work/nginx/logs/nginx.pid ]]; then
        pid=$(cat "$work/nginx/logs/nginx.pid" 2>/dev/null)
        "$lab_nginx_bin" -p "$work/nginx" -c "$work/nginx/conf/nginx.conf" -s stop 2>/dev/null
        for _ in $(seq 1 50); do [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
            pkill -KILL -P "$pid" 2>/dev/null
            kill -KILL "$pid" 2>/dev/null
        fi
    fi
    # Anything left that names this run's work dir on its command line (a JVM not yet recorded) or in its
    # environment (the Gradle daemon: GRADLE_USER_HOME is the private one).
    pids=$(lab_work_pids)
    if [[ -n $pids ]]; then
        lab_say "cleanup: ending leftover processes $(echo $pids)"
        kill -KILL $pids 2>/dev/null
    fi
    if [[ -n ${BENCH_KEEP:-} ]]; then lab_say "kept $work"; else rm -rf "$work"; fi
    exit "$status"
}
# The processes whose command line or environment names the work dir (never this shell).
lab_work_pids() {
    local dir pid
    for dir in /proc/[0-9]*; do
        pid=${dir#/proc/}
        [[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
        if grep -qsF -- "$work" "$dir/cmdline" "$dir/environ" 2>/dev/null; then echo "$pid"; fi
    done
}
trap lab_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

lab_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until something accepts connections on 127.0.0.1:port, or the process dies.
lab_wait_for_port() { # port pid name log
    local i
    for i in $(seq 1 400); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        if ! kill -0 "$2" 2>/dev/null; then
            lab_say "$3 exited before listening; its log:"
            tail -n 20 "$4" >&2
            return 1
        fi
        sleep 0.05
    done
    lab_say "$3 is not listening on port $1 after 20s"
    return 1
}

# The pushdeploy binary: BENCH_PUSHDEPLOY, or the release build (built unless BENCH_SKIP_BUILD).
lab_pushdeploy_binary() {
    if [[ -n ${BENCH_PUSHDEPLOY:-} ]]; then
        [[ -x $BENCH_PUSHDEPLOY ]] || lab_die "BENCH_PUSHDEPLOY=$BENCH_PUSHDEPLOY is not executable"
        lab_say "using $BENCH_PUSHDEPLOY (BENCH_PUSHDEPLOY)"
        lab_binary=$(cd "$(dirname "$BENCH_PUSHDEPLOY")" && pwd)/$(basename "$BENCH_PUSHDEPLOY")
        return
    fi
    if [[ -n ${BENCH_SKIP_BUILD:-} && -x $lab_root/.build/release/pushdeploy ]]; then
        lab_say "BENCH_SKIP_BUILD set: using the existing .build/release/pushdeploy"
    else
        command -v swift >/dev/null || lab_die "swift is missing"
        lab_say "make release-binary (swift build -c release --product pushdeploy --static-swift-stdlib)"
        make -C "$lab_root" --no-print-directory release-binary >"$work/swift-build.log" 2>&1 </dev/null || {
            tail -n 30 "$work/swift-build.log" >&2
            lab_die "the release build failed"
        }
    fi
    lab_binary=$lab_root/.build/release/pushdeploy
}

# --- The source repository: examples/demo-app, one commit on main ---------------------------------------
lab_source="$work/source"
lab_git() { git -C "$lab_source" -c user.name=bench -c user.email=bench@example.invalid "$@"; }

lab_make_source() {
    cp -R "$lab_root/examples/demo-app" "$lab_source"
    rm -rf "$lab_source/build" "$lab_source/.gradle"
    lab_git init -q -b main
    lab_git add -A
    lab_git commit -q -m "demo app"
}

# Commits a one-line change to the app's source; prints the new commit id.
lab_commit_change() { # note
    printf '// %s\n' "$1" >>"$lab_source/src/main/java/demo/DemoApp.java"
    lab_git commit -q -am "$1"
    lab_git rev-parse HEAD
}

# The private Gradle home: the cleanup stops its daemon with `gradle --stop`, and finds it anyway by its
# environment (GRADLE_USER_HOME names the work dir).
lab_make_gradle_home() {
    mkdir -p "$lab_gradle_home"
    printf 'org.gradle.jvmargs=-Xmx512m\n' >"$lab_gradle_home/gradle.properties"
}

# --- nginx ---------------------------------------------------------------------------------------------------
# Writes $work/nginx/conf/nginx.conf from an http-level body (server blocks, includes) and starts nginx.
lab_nginx_test=""
lab_nginx_reload=""
lab_nginx_start() { # http-body
    local prefix="$work/nginx"
    mkdir -p "$prefix/conf" "$prefix/logs" "$prefix/temp"
    cat >"$prefix/conf/nginx.conf" <<NGINX
# The bench's private nginx (loopback only). Not daemonized off: nginx forks its master as usual.
worker_processes 1;
pid $prefix/logs/nginx.pid;
error_log $prefix/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $prefix/temp/body;
    proxy_temp_path $prefix/temp/proxy;
    fastcgi_temp_path $prefix/temp/fastcgi;
    uwsgi_temp_path $prefix/temp/uwsgi;
    scgi_temp_path $prefix/temp/scgi;
$1
}
NGINX
    lab_nginx_test="[$lab_nginx_bin, -p, $prefix, -c, $prefix/conf/nginx.conf, -t, -q]"
    lab_nginx_reload="[$lab_nginx_bin, -p, $prefix, -c, $prefix/conf/nginx.conf, -s, reload]"
    "$lab_nginx_bin" -p "$prefix" -c "$prefix/conf/nginx.conf" -t -q 2>"$work/nginx-start.log" ||
        { cat "$work/nginx-start.log" >&2; lab_die "nginx -t failed"; }
    "$lab_nginx_bin" -p "$prefix" -c "$prefix/conf/nginx.conf" 2>>"$work/nginx-start.log" ||
        { cat "$work/nginx-start.log" >&2; lab_die "nginx did not start"; }
    lab_nginx_started=1
}

lab_nginx_reload() { "$lab_nginx_bin" -p "$work/nginx" -c "$work/nginx/conf/nginx.conf" -s reload 2>>"$work/nginx-reload.log"; }

# --- pushdeploy ------------------------------------------------------------------------------------------------
lab_token=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
printf '%s\n' "$lab_token" >"$work/token"
chmod 600 "$work/token"
lab_port=""

# Starts `pushdeploy serve --config $work/pushdeploy.yml` (written by the caller, listening on $lab_port).
lab_serve() {
    "$lab_binary" serve --config "$work/pushdeploy.yml" >>"$work/pushdeploy.log" 2>&1 &
    lab_pushdeploy_pid=$!
    lab_wait_for_port "$lab_port" "$lab_pushdeploy_pid" pushdeploy "$work/pushdeploy.log"
}

# curl against the API with the token; prints the body, fails on a non-2xx.
lab_api() { # method path [json-body]
    local args=(-sS -f -X "$1" -H "Authorization: Bearer $lab_token" "http://127.0.0.1:$lab_port$2")
    if [[ $# -ge 3 ]]; then args+=(-H 'Content-Type: application/json' --data-binary "$3"); fi
    curl "${args[@]}"
}

lab_record() { # app id
    printf '%s/deployments/%s/%06d.json' "$lab_state" "$1" "$2"
}

lab_log() { # app id
    printf '%s/deployments/%s/%06d.log' "$lab_state" "$1" "$2"
}

# Waits until the deployment's record says it finished; prints the final status. Fails after the timeout.
lab_wait_finished() { # app id [timeout-seconds]
    local record deadline status
    record=$(lab_record "$1" "$2")
    deadline=$((SECONDS + ${3:-300}))
    while ((SECONDS < deadline)); do
        if [[ -f $record ]]; then
            status=$(jq -r '.status' "$record" 2>/dev/null || true)
            case $status in
                succeeded | failed | cancelled | superseded | interrupted | rolled_back) echo "$status"; return 0 ;;
            esac
        fi
        sleep 0.05
    done
    lab_say "deployment $1/$2 did not finish in ${3:-300}s"
    return 1
}

# Queues a deployment through the API (POST /apps/APP/deploy or /rollback); prints its id.
lab_queue() { # app deploy|rollback [json-body]
    local answer body=${3:-}
    [[ -n $body ]] || body='{}'
    answer=$(lab_api POST "/apps/$1/$2" "$body") || { lab_say "POST /apps/$1/$2 failed"; return 1; }
    jq -er '.deployment' <<<"$answer"
}

# Fails, showing the record's error and the log's tail, unless the deployment succeeded.
lab_require_success() { # app id status
    [[ $3 == succeeded ]] && return 0
    lab_say "deployment $1/$2 ended $3: $(jq -r '.error // "-"' "$(lab_record "$1" "$2")")"
    tail -n 25 "$(lab_log "$1" "$2")" >&2
    return 1
}

# The version nginx serves at the URL (the body is `demo-app VERSION`), empty when it does not answer 200.
lab_served_version() { # url
    local body
    body=$(curl -s -f -m 2 "$1" 2>/dev/null) || return 0
    set -- $body
    echo "${2:-}"
}

# The live version recorded in state.json.
lab_live_version() { # app
    jq -r '[.entries[] | select(.role == "live") | .instance] | max_by(.started_at) | .version // empty' \
        "$lab_state/apps/$1/state.json" 2>/dev/null || true
}

# Median of numbers, one per line on stdin.
lab_median() {
    sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit } if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Seconds of each phase of a deployment record, from its start/end times: prints "name seconds" lines
# (a phase that occurs twice is summed), then "total S" from created_at to finished_at.
lab_phase_seconds() { # record
    python3 - "$1" <<'PY'
import json, sys
from datetime import datetime
def t(s):
    return datetime.strptime(s.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
r = json.load(open(sys.argv[1]))
sums = {}
for p in r.get("phases", []):
    if p.get("ended_at"):
        sums[p["name"]] = sums.get(p["name"], 0.0) + t(p["ended_at"]) - t(p["started_at"])
for name, s in sums.items():
    print(f"{name} {s:.3f}")
if r.get("finished_at"):
    print(f"total {t(r['finished_at']) - t(r['created_at']):.3f}")
PY
}
