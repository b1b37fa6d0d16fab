# shellcheck shell=bash
# Start and stop the local cluster's processes. Sourced after common.sh and toolchain.sh.
# Each process runs in its own session (setsid), logs to STATE_DIR/logs/NAME.log and has its
# pid in STATE_DIR/NAME.pid; stop_service kills exactly that pid and nothing else.

SERVICES=(postgres redis kafka etcd kube-apiserver)

load_ports() {
  local f="$STATE_DIR/ports.env"
  if [[ ! -f "$f" ]]; then
    mkdir -p "$STATE_DIR"
    {
      echo "PG_PORT=$(free_port)"
      echo "REDIS_PORT=$(free_port)"
      echo "KAFKA_PORT=$(free_port)"
      echo "KAFKA_CONTROLLER_PORT=$(free_port)"
      echo "ETCD_PORT=$(free_port)"
      echo "ETCD_PEER_PORT=$(free_port)"
      echo "APISERVER_PORT=$(free_port)"
    } >"$f"
  fi
  # shellcheck disable=SC1090
  source "$f"
}

# DB_USER_PREFIX: run a command as the `postgres` user when we are root (PostgreSQL refuses
# root). setpriv execs in place, so the recorded pid is the server's own.
DB_USER_PREFIX=()
if [[ $(id -u) -eq 0 ]]; then
  DB_USER_PREFIX=(setpriv --reuid=postgres --regid=postgres --init-groups --)
fi

# _spawn NAME CMD... -> start CMD detached, logging to logs/NAME.log, pid to NAME.pid.
_spawn() {
  local name="$1"; shift
  mkdir -p "$STATE_DIR/logs"
  setsid "$@" >>"$STATE_DIR/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE_DIR/$name.pid"
}

_fail_start() {
  local name="$1"
  log "$name did not become ready; last lines of $STATE_DIR/logs/$name.log:"
  tail -n 30 "$STATE_DIR/logs/$name.log" >&2 || true
  stop_service "$name"
  exit 1
}

start_postgres() {
  local pgbin=/usr/lib/postgresql/15/bin dir="$STATE_DIR/postgres"
  if [[ ! -f "$dir/data/PG_VERSION" ]]; then
    log "initialising PostgreSQL data directory"
    rm -rf "$dir" && mkdir -p "$dir"
    [[ $(id -u) -eq 0 ]] && chown postgres:postgres "$dir"
    "${DB_USER_PREFIX[@]}" "$pgbin/initdb" -D "$dir/data" -U cj --auth=trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  fi
  # fsync and full-page writes off: a disposable test database, speed over durability.
  _spawn postgres "${DB_USER_PREFIX[@]}" "$pgbin/postgres" -D "$dir/data" -p "$PG_PORT" -k "$dir" \
    -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
    -c full_page_writes=off -c max_connections=300 -c shared_buffers=128MB
  wait_for postgres 60 "$pgbin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" || _fail_start postgres
  psql -h 127.0.0.1 -p "$PG_PORT" -U cj -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='cj'" \
    | grep -q 1 || psql -q -h 127.0.0.1 -p "$PG_PORT" -U cj -d postgres -c 'CREATE DATABASE cj' >/dev/null
}

start_redis() {
  mkdir -p "$STATE_DIR/redis"
  # AOF fsynced every second (a restart loses at most ~1 s of accepted requests) and no
  # eviction (a full Redis refuses writes instead of dropping queued requests): what the
  # provider API and the workers require of their Redis (they refuse an evicting policy).
  _spawn redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$STATE_DIR/redis" \
    --save '' --appendonly yes --appendfsync everysec --maxmemory-policy noeviction \
    --daemonize no
  wait_for redis 30 redis-cli -p "$REDIS_PORT" ping || _fail_start redis
}

start_kafka() {
  local lib dir="$STATE_DIR/kafka"
  lib="$(kafka_lib_dir)"
  mkdir -p "$dir"
  # With a node (hack/lib/node.sh), pods reach the broker at the bridge's address: a listener
  # of its own, since a client connects to the address the broker advertises.
  local pods_listener=""
  node_mode && pods_listener=",PODS://$POD_GATEWAY:$KAFKA_POD_PORT"
  cat >"$dir/server.properties" <<PROPS
# Single-node KRaft broker for tests. Topics are created explicitly (bootstrap-topics, tests):
# broker-side auto-creation is off, as in production.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT$pods_listener
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT$pods_listener
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT${pods_listener:+,PODS:PLAINTEXT}
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
  cat >"$dir/log4j2.properties" <<'PROPS'
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
# "Kafka Server started" (INFO) is the readiness signal devcluster waits for.
logger.raftserver.name = kafka.server.KafkaRaftServer
logger.raftserver.level = INFO
PROPS
  local java=(java -Xms256m -Xmx768m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$dir/log4j2.properties" -cp "$lib/*")
  if [[ ! -f "$dir/data/meta.properties" ]]; then
    local cluster_id
    cluster_id="$(python3 -c 'import base64,uuid; print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')"
    log "formatting Kafka KRaft storage"
    "${java[@]}" kafka.tools.StorageTool format --standalone -t "$cluster_id" \
      -c "$dir/server.properties" >"$dir/format.log" 2>&1 || { cat "$dir/format.log" >&2; die "kafka storage format failed"; }
  fi
  : >"$STATE_DIR/logs/kafka.log"
  _spawn kafka "${java[@]}" kafka.Kafka "$dir/server.properties"
  wait_for kafka 90 grep -q 'Kafka Server started' "$STATE_DIR/logs/kafka.log" || _fail_start kafka
}

start_etcd() {
  local bin
  bin="$(etcd_bin_dir)"
  mkdir -p "$STATE_DIR/etcd"
  _spawn etcd "$bin/etcd" --name devcluster --data-dir "$STATE_DIR/etcd/data" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "devcluster=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync --quota-backend-bytes=4294967296 --log-level=warn
  wait_for etcd 30 curl -fsS "http://127.0.0.1:$ETCD_PORT/health" || _fail_start etcd
}

# _make_pki -> a CA, the API server's serving certificate, an admin client certificate
# (group system:masters) and the service-account signing key pair, in STATE_DIR/pki.
_make_pki() {
  local pki="$STATE_DIR/pki"
  [[ -f "$pki/admin.crt" ]] && return 0
  log "generating certificates"
  rm -rf "$pki" && mkdir -p "$pki"
  (
    cd "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
      -subj "/CN=cj-devcluster-ca" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver" 2>/dev/null
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile server.ext -out apiserver.crt 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr -subj "/O=system:masters/CN=cj-admin" 2>/dev/null
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile client.ext -out admin.crt 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  )
}

_write_kubeconfig() {
  local pki="$STATE_DIR/pki"
  cat >"$STATE_DIR/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: devcluster
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority: $pki/ca.crt
users:
- name: cj-admin
  user:
    client-certificate: $pki/admin.crt
    client-key: $pki/admin.key
contexts:
- name: devcluster
  context: {cluster: devcluster, user: cj-admin, namespace: default}
current-context: devcluster
KC
}

start_kube_apiserver() {
  local bin pki="$STATE_DIR/pki"
  bin="$(k8s_bin_dir)"
  _make_pki
  _write_kubeconfig
  # Without a node no kubelet, scheduler or controller-manager: objects are stored and served,
  # never run, and ServiceAccount admission is off because no token controller creates the
  # tokens it wants.
  # Priority-and-fairness is off: it spends CPU on bookkeeping a one-user cluster does not need.
  # With a node, pods reach the API server through the `kubernetes` Service, whose endpoint is
  # the advertised address (a forwarder there relays to loopback); their ServiceAccount tokens
  # come from the kubelet (TokenRequest), so ServiceAccount admission is on; the kubelet's
  # client certificate opens `kubectl logs` and `exec`.
  local advertise=127.0.0.1 node_flags=(--disable-admission-plugins=ServiceAccount)
  if node_mode; then
    advertise="$POD_GATEWAY"
    node_flags=(--kubelet-client-certificate="$pki/admin.crt" --kubelet-client-key="$pki/admin.key"
      --kubelet-preferred-address-types=InternalIP)
  fi
  _spawn kube-apiserver "$bin/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=127.0.0.1 --advertise-address="$advertise" --secure-port="$APISERVER_PORT" \
    --cert-dir="$pki" --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" --authorization-mode=RBAC \
    --service-cluster-ip-range=10.0.0.0/24 \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
    "${node_flags[@]}" --enable-priority-and-fairness=false \
    --allow-privileged=true --v=0
  wait_for kube-apiserver 120 "$bin/kubectl" --kubeconfig "$STATE_DIR/kubeconfig" get --raw /readyz \
    || _fail_start kube-apiserver
}

# _stop_signal NAME -> the signal that shuts NAME down promptly and cleanly. PostgreSQL: SIGINT,
# its "fast" shutdown (disconnects the clients, checkpoints, exits); SIGTERM is its "smart"
# shutdown, which waits for every client to leave, and its backends run in sessions of their
# own, so the SIGKILL below would reach only the postmaster and leave them (and its lock file).
_stop_signal() {
  case "$1" in
    postgres) echo INT ;;
    *) echo TERM ;;
  esac
}

# stop_service NAME -> the stop signal to the recorded pid's process group, SIGKILL after 15 s.
stop_service() {
  local name="$1" f="$STATE_DIR/$1.pid" pid sig
  [[ -f "$f" ]] || return 0
  pid="$(cat "$f")"
  sig="$(_stop_signal "$name")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "-$sig" -- "-$pid" 2>/dev/null || kill "-$sig" "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 15))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name did not stop in 15 s; killing"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped $name (pid $pid)"
  fi
  rm -f "$f"
}
