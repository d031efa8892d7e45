#!/usr/bin/env bash
# Start any of the machine's shared services (MariaDB, PostgreSQL, Redis,
# RabbitMQ) that is not answering on loopback; never restarts a running one.
set -u

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_up() {
  local name=$1 port=$2 _
  for _ in $(seq 1 60); do
    up "$port" && { echo "$name is up on $port"; return 0; }
    sleep 1
  done
  echo "$name did not come up on port $port" >&2
  return 1
}

start() {
  local name=$1 port=$2
  shift 2
  if up "$port"; then
    echo "$name is up on $port"
    return 0
  fi
  echo "starting $name"
  "$@" || true
  wait_up "$name" "$port"
}

status=0
start MariaDB 3306 start-stop-daemon --start --oknodo --background \
  --exec /usr/sbin/mariadbd || status=1
pg_version=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' \
  2>/dev/null | sort | head -n 1)
start PostgreSQL 5432 pg_ctlcluster --skip-systemctl-redirect \
  "$pg_version" main start || status=1
start Redis 6379 redis-server --daemonize yes --bind 127.0.0.1 -::1 \
  --port 6379 --save "" --appendonly no --dir /var/lib/redis \
  --logfile /var/log/redis/ci.log || status=1
start RabbitMQ 5672 rabbitmq-server -detached || status=1

# Tests make a RabbitMQ vhost each: the management API makes one in
# milliseconds, where rabbitmqctl boots an Erlang VM per command.  Without
# the plugin the tests fall back to rabbitmqctl.
if up 5672 && ! up 15672; then
  if timeout 120 rabbitmq-plugins enable rabbitmq_management >/dev/null; then
    wait_up "RabbitMQ management API" 15672 || true
  else
    echo "RabbitMQ management plugin not enabled: vhosts via rabbitmqctl"
  fi
fi

exit "$status"
