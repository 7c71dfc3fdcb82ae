#!/usr/bin/env bash
# Three replicas of the cluster example (examples/cluster.rs) with the lock in Redis and the
# executions in PostgreSQL, scraped by Prometheus. The script kills the replica that runs
# the rollup (SIGKILL), waits until another replica has taken the execution over and
# completed it, and prints the takeover as `tickguard history`, `tickguard execution` and
# the dashboard's queries (docs/observability/grafana-dashboard.json) show it.
#
#   bash examples/cluster/run.sh
#
# On Debian, what is missing is installed from Debian's packages: redis-server and
# postgresql by scripts/services (which starts them on 127.0.0.1:6379 and 127.0.0.1:5432),
# prometheus by scripts/check-observability (which leaves the package's own server stopped,
# and checks the dashboard's queries). Set TICKGUARD_POSTGRES_URL and TICKGUARD_REDIS_URL to
# use servers of your own instead.
#
# The replicas and Prometheus run on free local ports, with their logs and Prometheus's
# configuration in a temp directory (printed); all are stopped when the script ends. The
# executions stay in a PostgreSQL schema of their own (printed), for more `tickguard`
# commands.
set -euo pipefail
cd "$(dirname "$0")/../.."

step() { printf '\n==> %s\n' "$*"; }
fail() { printf 'cluster: %s\n' "$*" >&2; exit 1; }
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

postgres=${TICKGUARD_POSTGRES_URL:-}
redis=${TICKGUARD_REDIS_URL:-}

step "services: Redis, PostgreSQL, Prometheus"
if [ -z "$postgres" ] || [ -z "$redis" ]; then
  bash scripts/services
fi
postgres=${postgres:-postgres://postgres@127.0.0.1:5432/test}
redis=${redis:-redis://127.0.0.1:6379}
command -v prometheus >/dev/null || bash scripts/check-observability

step "build: the cluster example and the tickguard command"
cargo build -q -p tickguard-examples --example cluster
cargo build -q -p tickguard-cli
replica_bin=target/debug/examples/cluster
tickguard=target/debug/tickguard

tmp=$(mktemp -d -t tickguard-cluster.XXXXXX)
namespace="cluster_demo_$(date +%s)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp/prometheus-data"
}
trap cleanup EXIT

step "three replicas (namespace $namespace, logs in $tmp)"
declare -A replica_pid replica_of_target
targets=""
for i in 1 2 3; do
  port=$(free_port)
  TICKGUARD_LOG=json "$replica_bin" 300 --instance "replica-$i" --postgres "$postgres" \
    --redis "$redis" --namespace "$namespace" --metrics "127.0.0.1:$port" \
    >"$tmp/replica-$i.log" 2>&1 &
  pids+=("$!")
  replica_pid[$i]=$!
  replica_of_target["127.0.0.1:$port"]="replica-$i"
  targets="$targets${targets:+, }\"127.0.0.1:$port\""
  echo "replica-$i: pid $!, metrics at http://127.0.0.1:$port/metrics"
done

step "Prometheus, scraping the three every second"
web=$(free_port)
cat >"$tmp/prometheus.yml" <<EOF
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: ["$PWD/docs/observability/alerts.yml"]
scrape_configs:
  - job_name: cluster
    honor_labels: true
    static_configs: [{targets: [$targets]}]
EOF
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/prometheus-data" \
  --web.listen-address="127.0.0.1:$web" >"$tmp/prometheus.log" 2>&1 &
pids+=("$!")
for _ in $(seq 150); do curl -sf "http://127.0.0.1:$web/-/ready" >/dev/null && break; sleep 0.2; done
curl -sf "http://127.0.0.1:$web/-/ready" >/dev/null || fail "Prometheus did not start: see $tmp/prometheus.log"
echo "Prometheus at http://127.0.0.1:$web (configuration $tmp/prometheus.yml)"

# The first log line of replica $1 that has every one of the other arguments in it.
line_of() {
  local file="$tmp/$1.log"
  shift
  local lines
  lines=$(cat "$file")
  for part in "$@"; do lines=$(grep -F -- "$part" <<<"$lines" || true); done
  head -n 1 <<<"$lines"
}
field() { grep -o "\"$1\":\"[^\"]*\"" | head -n 1 | cut -d'"' -f4; }
# Waits up to $1 seconds until `line_of` finds a line in one of the replicas $2 (a list).
wait_line() {
  local seconds=$1 replicas=$2
  shift 2
  for _ in $(seq $((seconds * 10))); do
    for r in $replicas; do
      if [ -n "$(line_of "$r" "$@")" ]; then
        echo "$r"
        return
      fi
    done
    sleep 0.1
  done
  fail "no log line with $* within $seconds s in $replicas (logs in $tmp)"
}

step "waiting for a rollup (every 10 s) to start on one replica"
victim=$(wait_line 20 "replica-1 replica-2 replica-3" '"message":"execution started"' '"job":"rollup"' '"previous_attempts":0')
id=$(line_of "$victim" '"message":"execution started"' '"job":"rollup"' | field execution_id)
echo "$victim runs $id"
wait_line 5 "$victim" '"message":"batch rolled up"' '"batch":3' >/dev/null
victim_pid=${replica_pid[${victim#replica-}]}
kill -KILL "$victim_pid"
wait "$victim_pid" 2>/dev/null || true # reaped, without the shell's "Killed" notice
killed_at=$(date -u +%H:%M:%S.%N | cut -c1-12)
echo "$killed_at  $victim killed (SIGKILL) after its third batch: no lease release, no last write"

step "the takeover"
others=$(printf 'replica-%s ' 1 2 3 | sed "s/$victim //")
taker=$(wait_line 15 "$others" '"message":"execution started"' "\"execution_id\":\"$id\"")
started=$(line_of "$taker" '"message":"execution started"' "\"execution_id\":\"$id\"")
echo "$(field timestamp <<<"$started" | cut -c12-23)  $taker took $id over (fence $(grep -o '"fence":[0-9]*' <<<"$started" | cut -d: -f2))"
resumed=$(line_of "$taker" '"message":"rollup starting at batch')
echo "              it resumed at batch $(grep -o '"start":[0-9]*' <<<"$resumed" | cut -d: -f2), the killed run's last checkpoint"
wait_line 10 "$taker" '"message":"execution finished"' "\"execution_id\":\"$id\"" '"status":"COMPLETED"' >/dev/null
echo "              and completed it"

export TICKGUARD_STORE="$postgres" TICKGUARD_SCHEMA="$namespace"
step "tickguard history rollup: one execution per tick; $id completed by $taker"
"$tickguard" history rollup --limit 5
step "tickguard execution $id: the killed run ABANDONED, then the takeover"
"$tickguard" execution "$id"

step "the next tick runs on one of the two replicas left"
done_line=""
for _ in $(seq 150); do
  for r in $others; do
    done_line=$(grep -F '"message":"execution finished"' "$tmp/$r.log" | grep -vF "\"execution_id\":\"$id\"" | head -n 1 || true)
    if [ -n "$done_line" ]; then next=$r; break 2; fi
  done
  sleep 0.1
done
[ -n "$done_line" ] || fail "no rollup after the takeover (logs in $tmp)"
echo "$next ran $(field execution_id <<<"$done_line"): $(field status <<<"$done_line")"

step "the dashboard's queries, from Prometheus (series at 0 left out; increase() extrapolates to the window, so 2.1 is 2)"
query() {
  curl -sfG "http://127.0.0.1:$web/api/v1/query" --data-urlencode "query=$1"
}
# Prometheus shows the last run once it scraped it.
for _ in $(seq 100); do
  count=$(query 'sum(tickguard_executions_total{job="rollup",outcome="success"})' |
    python3 -c 'import json, sys; r = json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else 0)')
  [ "${count%.*}" -ge 2 ] && break
  sleep 0.2
done
[ "${count%.*}" -ge 2 ] || fail "Prometheus did not scrape the two rollups within 20 s (its log and configuration are in $tmp)"
targets_json=$(for t in "${!replica_of_target[@]}"; do printf '%s=%s\n' "$t" "${replica_of_target[$t]}"; done)
show() {
  printf '\n%s\n  %s\n' "$1" "$2"
  query "$2" | TARGETS="$targets_json" python3 -c '
import json, os, sys
names = dict(line.split("=", 1) for line in os.environ["TARGETS"].split())
shown = 0
for r in sorted(json.load(sys.stdin)["data"]["result"], key=lambda r: sorted(r["metric"].items())):
    value = float(r["value"][1])
    if value == 0 and os.environ.get("ZEROS") != "1":
        continue
    labels = {k: names.get(v, v) if k == "instance" else v for k, v in r["metric"].items()}
    text = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "__name__")
    print(f"    {{{text}}}  {value:.3g}")
    shown += 1
if not shown:
    print("    (none)")
'
}
show "Executions by outcome (the dashboard's Executions row), per replica:" \
  'sum by (job, instance, outcome) (increase(tickguard_executions_total{job="rollup"}[5m]))'
show "Skips by reason: replicas that found a tick taken (locked, duplicate)" \
  'sum by (job, reason) (increase(tickguard_skips_total{job="rollup"}[5m]))'
ZEROS=1 show "Runs in progress now:" 'sum by (job) (tickguard_running{job="rollup"})'
show "Seconds since the last success:" \
  'time() - max by (job) (tickguard_last_success_timestamp_seconds{job="rollup"})'
ZEROS=1 show "Scrape targets up (the killed replica is 0):" 'up{job="cluster"}'

step "done"
echo "the executions stay in schema $namespace: TICKGUARD_STORE=$postgres TICKGUARD_SCHEMA=$namespace $tickguard jobs"
echo "the replicas' logs are in $tmp"
