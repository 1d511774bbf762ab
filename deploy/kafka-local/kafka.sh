#!/usr/bin/env bash
# Runs a single-node Apache Kafka (KRaft) from Maven Central jars, without Docker.
#
#   kafka.sh up      fetch jars once, format storage once, start, wait until ready
#   kafka.sh down    stop the broker recorded in the PID file and wait for it to exit
#   kafka.sh status  exit 0 when our broker is running
#
# Environment (all optional):
#   KAFKA_PORT             client port                  (default 9092)
#   KAFKA_CONTROLLER_PORT  KRaft controller port        (default KAFKA_PORT + 1)
#   KAFKA_STATE_DIR        data, PID file, log          (default <repo>/.kafka-local/<port>)
#   KAFKA_HEAP             JVM heap                     (default 512m)
#   KAFKA_READY_TIMEOUT_S  how long `up` waits          (default 90)
#   KAFKA_EXTRA_PROPERTIES a properties file appended last, e.g. a SASL_SSL listener
#                          beside PLAINTEXT (the readiness probe keeps using PLAINTEXT)
#   KAFKA_FORMAT_ARGS      extra StorageTool format arguments, e.g. --add-scram '...'
#                          to create SCRAM users with the storage (first start only)
# Several brokers can run side by side with distinct ports, e.g. tests that
# restart a broker use their own instead of the shared development one.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
port=${KAFKA_PORT:-9092}
controller_port=${KAFKA_CONTROLLER_PORT:-$((port + 1))}
state=${KAFKA_STATE_DIR:-$repo/.kafka-local/$port}
heap=${KAFKA_HEAP:-512m}
ready_timeout=${KAFKA_READY_TIMEOUT_S:-90}
lib=$here/lib
pidfile=$state/broker.pid
logfile=$state/broker.log
bootstrap=127.0.0.1:$port

log() { printf 'kafka-local: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

our_pid() {
  [ -f "$pidfile" ] || return 1
  local pid
  pid=$(cat "$pidfile")
  # A stale PID file can name a recycled PID: only a java running our config counts.
  if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$state/server.properties"; then
    echo "$pid"
    return 0
  fi
  return 1
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

fetch_jars() {
  if [ -f "$lib/.complete" ]; then return 0; fi
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch the Kafka jars; install it (apt-get install maven)"
  log "fetching Kafka jars from Maven Central into $lib (once)"
  rm -rf "$lib"
  mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$lib" >&2
  touch "$lib/.complete"
}

write_config() {
  mkdir -p "$state/data"
  {
    cat "$here/server.properties"
    printf '\n# --- written by kafka.sh for this instance ---\n'
    printf 'controller.quorum.voters=1@127.0.0.1:%s\n' "$controller_port"
    printf 'listeners=PLAINTEXT://127.0.0.1:%s,CONTROLLER://127.0.0.1:%s\n' "$port" "$controller_port"
    printf 'advertised.listeners=PLAINTEXT://127.0.0.1:%s\n' "$port"
    printf 'log.dirs=%s\n' "$state/data"
    if [ -n "${KAFKA_EXTRA_PROPERTIES:-}" ]; then
      printf '\n# --- from %s ---\n' "$KAFKA_EXTRA_PROPERTIES"
      cat "$KAFKA_EXTRA_PROPERTIES"
    fi
  } >"$state/server.properties"
}

java_cmd() {
  java -Xms"$heap" -Xmx"$heap" -XX:+UseG1GC \
    -Dlog4j2.configurationFile="$here/log4j2.properties" \
    -cp "$lib/*" "$@"
}

format_storage() {
  if [ -f "$state/data/meta.properties" ]; then return 0; fi
  local cluster_id
  cluster_id=$(java_cmd kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
  log "formatting storage in $state/data (cluster $cluster_id)"
  local -a extra=()
  # Word splitting with quotes honoured, so an --add-scram value may hold spaces.
  [ -n "${KAFKA_FORMAT_ARGS:-}" ] && eval "extra=($KAFKA_FORMAT_ARGS)"
  java_cmd kafka.tools.StorageTool format -t "$cluster_id" -c "$state/server.properties" --ignore-formatted \
    "${extra[@]}" >"$state/format.log" 2>&1 || { cat "$state/format.log" >&2; die "formatting storage failed"; }
}

wait_ready() {
  local pid=$1 deadline=$((SECONDS + ready_timeout))
  while ((SECONDS < deadline)); do
    kill -0 "$pid" 2>/dev/null || { tail -n 30 "$logfile" >&2; die "broker exited during start-up (log: $logfile)"; }
    if node "$repo/scripts/kafka-ready.mjs" "$bootstrap" 2>/dev/null; then return 0; fi
    sleep 1
  done
  tail -n 30 "$logfile" >&2
  die "broker did not answer a metadata request within ${ready_timeout}s (log: $logfile)"
}

up() {
  if pid=$(our_pid); then
    log "broker already running (pid $pid)"
    echo "$bootstrap"
    return 0
  fi
  for p in "$port" "$controller_port"; do
    port_in_use "$p" && die "port $p on 127.0.0.1 is taken by another process; set KAFKA_PORT to use other ports"
  done
  command -v java >/dev/null || die "Java 17 or newer is needed to run the local broker"
  fetch_jars
  write_config
  format_storage
  log "starting broker on $bootstrap (log: $logfile)"
  # setsid: the broker outlives the make or test process that started it.
  # 9>&-: it must not inherit the lock, or no later kafka.sh could take it.
  setsid java -Xms"$heap" -Xmx"$heap" -XX:+UseG1GC \
    -Dlog4j2.configurationFile="$here/log4j2.properties" \
    -cp "$lib/*" kafka.Kafka "$state/server.properties" </dev/null >"$logfile" 2>&1 9>&- &
  echo $! >"$pidfile"
  wait_ready "$!"
  log "ready"
  echo "$bootstrap"
}

down() {
  local pid
  if ! pid=$(our_pid); then
    rm -f "$pidfile"
    log "no broker of ours is running on port $port"
    return 0
  fi
  log "stopping broker (pid $pid)"
  kill -TERM "$pid"
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; log "stopped"; return 0; }
    sleep 0.5
  done
  log "broker did not stop within 30s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
  rm -f "$pidfile"
}

# Tests in parallel processes may all ask for the broker at once: one at a time.
with_lock() {
  mkdir -p "$state"
  exec 9>"$state/.lock"
  flock -w 300 9 || die "timed out waiting for another kafka.sh on port $port"
  "$@"
}

case "${1:-}" in
  up) with_lock up ;;
  down) with_lock down ;;
  status) our_pid >/dev/null ;;
  jars) mkdir -p "$here" && exec 9>"$here/.jars.lock" && flock -w 600 9 && fetch_jars ;;
  *) echo "usage: $0 up|down|status|jars" >&2; exit 2 ;;
esac
