#!/usr/bin/env bash
# A real, single-node Cinder on loopback for the functional tests (the small
# cousin of devstack/): cinder-api, cinder-scheduler and cinder-volume with
# the fake driver, on the machine's MariaDB (a database of its own) and
# RabbitMQ (a vhost of its own), without Keystone (noauth).
#
#   tools/cinder-local.sh install          # once; reused when present
#   tools/cinder-local.sh start STATE_DIR  # prints the env file's path
#   tools/cinder-local.sh stop STATE_DIR   # stops exactly its processes
#   tools/cinder-local.sh stop-api|start-api STATE_DIR
#   tools/cinder-local.sh status STATE_DIR
#
# Environment: CINDER_VENV, CINDER_PORT, CINDER_PROJECT_ID, CINDER_QUOTA_*,
# CINDER_READY_TIMEOUT, CINDER_MYSQL_MAX_CONNECTIONS (raised to, default
# 600), CINDER_KEEP=1 (keep the database and vhost on stop),
# VOLUME_POOL_TEST_MYSQL_CLI (default: "mariadb -uroot -h127.0.0.1").
set -euo pipefail

CINDER_VENV=${CINDER_VENV:-$HOME/.cache/volume-pool/cinder-venv}
CINDER_PROJECT_ID=${CINDER_PROJECT_ID:-a1b2c3d4e5f60718293a4b5c6d7e8f90}
CINDER_READY_TIMEOUT=${CINDER_READY_TIMEOUT:-120}
MYSQL_CLI=${VOLUME_POOL_TEST_MYSQL_CLI:-mariadb -uroot -h127.0.0.1}
SERVICES=(cinder-api cinder-scheduler cinder-volume)

die() { echo "cinder-local: $*" >&2; exit 1; }

mysql_exec() {
  # shellcheck disable=SC2086  # the CLI and its options are words
  $MYSQL_CLI -e "$1"
}

cmd_install() {
  local marker=$CINDER_VENV/.volume-pool-installed
  if [ -f "$marker" ] && "$CINDER_VENV/bin/python" -c 'import cinder' \
      2>/dev/null; then
    echo "Cinder already installed in $CINDER_VENV"
    return 0
  fi
  echo "Installing Cinder into $CINDER_VENV"
  python3 -m venv "$CINDER_VENV"
  # The machine's pip config names local indexes that may be absent: keep
  # its warnings about them out of the log.
  "$CINDER_VENV/bin/pip" install -q --disable-pip-version-check \
    cinder python-cinderclient pymysql fixtures 2>&1 \
    | grep -v "^WARNING: Location" || true
  "$CINDER_VENV/bin/python" -c 'import cinder' || die "cinder not importable"
  touch "$marker"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0));
print(s.getsockname()[1]); s.close()'
}

find_etc() {
  local file=$1 found
  found=$(find "$CINDER_VENV" -path "*etc/cinder/$file" -print -quit)
  [ -n "$found" ] || die "$file not found in $CINDER_VENV"
  echo "$found"
}

write_conf() {
  local state=$1 port=$2 db=$3 vhost=$4
  cat > "$state/cinder.conf" <<EOF
[DEFAULT]
auth_strategy = noauth
enabled_backends = fake
osapi_volume_listen = 127.0.0.1
osapi_volume_listen_port = $port
osapi_volume_workers = 1
transport_url = rabbit://guest:guest@127.0.0.1:5672/$vhost
state_path = $state/state
log_dir = $state/log
api_paste_config = $(find_etc api-paste.ini)
resource_query_filters_file = $(find_etc resource_filters.json)
scheduler_driver_init_wait_time = 2
default_volume_type = __DEFAULT__
quota_volumes = ${CINDER_QUOTA_VOLUMES:-2000}
quota_gigabytes = ${CINDER_QUOTA_GIGABYTES:-20000}
quota_snapshots = ${CINDER_QUOTA_SNAPSHOTS:-200}
report_interval = 2
service_down_time = 20

[database]
connection = mysql+pymysql://root@127.0.0.1/$db
# Three Cinder services with oslo.db's default pools (5 + 50 overflow) can
# take more than MariaDB's 151 connections under a burst of creates.
max_pool_size = 5
max_overflow = 5

[oslo_concurrency]
lock_path = $state/lock

[fake]
volume_driver = cinder.tests.fake_driver.FakeLoggingVolumeDriver
volume_backend_name = fake
EOF
}

start_service() {
  # setsid: its pid is its process group id, so a test can stop the
  # service with the workers it forks (cinder-api) in one signal.
  local state=$1 name=$2
  setsid "$CINDER_VENV/bin/$name" --config-file "$state/cinder.conf" \
    > "$state/log/$name.out" 2>&1 &
  echo $! > "$state/$name.pid"
}

services_up() {
  # Ready when scheduler and volume report up with a heartbeat newer than
  # our start (right after a restart old rows can still read "up").
  local state=$1 since=$2
  # shellcheck disable=SC1091
  . "$state/env"
  "$CINDER_VENV/bin/python" - "$CINDER_ENDPOINT" "$CINDER_PROJECT_ID" \
      "$since" <<'EOF'
import json, sys, urllib.request, datetime
endpoint, project, since = sys.argv[1], sys.argv[2], float(sys.argv[3])
req = urllib.request.Request(
    '%s/%s/os-services' % (endpoint, project),
    headers={'X-Auth-Token': 'admin:%s' % project,
             'X-User-Id': 'admin', 'X-Project-Id': project})
try:
    services = json.load(urllib.request.urlopen(req, timeout=5))['services']
except Exception:
    sys.exit(1)
fresh = set()
for s in services:
    if s['state'] != 'up' or not s.get('updated_at'):
        continue
    seen = datetime.datetime.fromisoformat(s['updated_at']).replace(
        tzinfo=datetime.timezone.utc).timestamp()
    if seen >= since:
        fresh.add(s['binary'])
sys.exit(0 if {'cinder-scheduler', 'cinder-volume'} <= fresh else 1)
EOF
}

tail_logs() {
  local state=$1 f
  for f in "$state"/log/*; do
    [ -f "$f" ] || continue
    echo "----- $f (last 40 lines)" >&2
    tail -n 40 "$f" >&2
  done
}

# Cinder is the biggest MariaDB client on the machine: under a burst of
# creates its scheduler was seen holding 127 connections (its [database]
# pool options notwithstanding), which with the managers under test and
# Cinder's other services passed MariaDB's default max_connections (151):
# Cinder then stalled, and managers could not connect.  Raise the limit at
# run time (no restart); a larger setting is never lowered.
raise_max_connections() {
  local wanted=${CINDER_MYSQL_MAX_CONNECTIONS:-600} current
  current=$(mysql_exec 'SELECT @@max_connections' | tail -n 1)
  if [ "${current:-0}" -lt "$wanted" ]; then
    mysql_exec "SET GLOBAL max_connections = $wanted"
    echo "cinder-local: MariaDB max_connections $current -> $wanted" >&2
  fi
}

cmd_start() {
  local state=${1:?state dir}
  [ -x "$CINDER_VENV/bin/cinder-api" ] || cmd_install
  raise_max_connections
  mkdir -p "$state/log" "$state/state" "$state/lock"
  local port=${CINDER_PORT:-$(free_port)}
  local suffix db vhost
  suffix=$(python3 -c 'import uuid; print(uuid.uuid4().hex[:10])')
  db=cinder_$suffix
  vhost=cinder-$suffix
  mysql_exec "CREATE DATABASE $db CHARACTER SET utf8mb4"
  rabbitmqctl -q add_vhost "$vhost" >/dev/null
  rabbitmqctl -q set_permissions -p "$vhost" guest '.*' '.*' '.*' >/dev/null
  write_conf "$state" "$port" "$db" "$vhost"
  cat > "$state/env" <<EOF
CINDER_ENDPOINT=http://127.0.0.1:$port/v3
CINDER_PORT=$port
CINDER_PROJECT_ID=$CINDER_PROJECT_ID
CINDER_DB=$db
CINDER_VHOST=$vhost
CINDER_STATE_DIR=$state
EOF
  "$CINDER_VENV/bin/cinder-manage" --config-file "$state/cinder.conf" \
    db sync > "$state/log/db-sync.out" 2>&1 \
    || { tail_logs "$state"; die "cinder-manage db sync failed"; }
  local since
  since=$(date +%s)
  local name
  for name in "${SERVICES[@]}"; do
    start_service "$state" "$name"
  done
  local deadline=$((SECONDS + CINDER_READY_TIMEOUT))
  until services_up "$state" "$since"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail_logs "$state"
      cmd_stop "$state"
      die "Cinder did not come up within ${CINDER_READY_TIMEOUT}s"
    fi
    sleep 1
  done
  echo "$state/env"
}

stop_pid() {
  local pidfile=$1 pid i
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    # A test may have left it stopped (a hung API): wake it to terminate.
    kill -CONT -- "-$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
    # cinder-api forks a worker: take its children down with it.
    pkill -KILL -P "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
  [ "${i:-0}" -ge 0 ]
}

cmd_stop() {
  local state=${1:?state dir} name
  for name in "${SERVICES[@]}"; do
    stop_pid "$state/$name.pid"
  done
  if [ "${CINDER_KEEP:-0}" != 1 ] && [ -f "$state/env" ]; then
    # shellcheck disable=SC1091
    . "$state/env"
    mysql_exec "DROP DATABASE IF EXISTS $CINDER_DB" || true
    rabbitmqctl -q delete_vhost "$CINDER_VHOST" >/dev/null 2>&1 || true
  fi
}

cmd_stop_api() {
  stop_pid "${1:?state dir}/cinder-api.pid"
}

cmd_start_api() {
  local state=${1:?state dir}
  start_service "$state" cinder-api
  # shellcheck disable=SC1091
  . "$state/env"
  local i
  for i in $(seq 1 60); do
    if curl -fsS -o /dev/null "$CINDER_ENDPOINT/" 2>/dev/null \
        || python3 -c "import urllib.request,sys;
urllib.request.urlopen(sys.argv[1], timeout=2)" "$CINDER_ENDPOINT/" \
        2>/dev/null; then
      return 0
    fi
    sleep 0.5
  done
  tail_logs "$state"
  die "cinder-api did not come back"
}

cmd_status() {
  local state=${1:?state dir} name pid
  for name in "${SERVICES[@]}"; do
    pid=$(cat "$state/$name.pid" 2>/dev/null || echo -)
    if [ "$pid" != - ] && kill -0 "$pid" 2>/dev/null; then
      echo "$name running ($pid)"
    else
      echo "$name stopped"
    fi
  done
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start "${2:-}" ;;
  stop) cmd_stop "${2:-}" ;;
  stop-api) cmd_stop_api "${2:-}" ;;
  start-api) cmd_start_api "${2:-}" ;;
  status) cmd_status "${2:-}" ;;
  *) echo "usage: $0 install|start|stop|stop-api|start-api|status [STATE_DIR]" >&2
     exit 2 ;;
esac
