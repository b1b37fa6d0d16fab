# shellcheck shell=bash
# `hack/devcluster up --node`: a node for the local cluster, so the chart's pods really run.
# containerd (Debian package, runc, cgroupfs) with the CNI bridge plugin (Debian's
# containernetworking-plugins) on a bridge of its own, a kubelet, kube-proxy (iptables),
# kube-scheduler and kube-controller-manager (built from the same k8s.io/kubernetes release as
# the API server, hack/gomod/k8s-node), and the images of `make images` plus a pause image
# built here, loaded into containerd. Pods reach the host's PostgreSQL, Redis and API server
# through TCP forwarders (socat) on the bridge's address, and Kafka through a listener of its
# own there. One node per machine: it owns the bridge, the kubepods cgroups and kube-proxy's
# iptables chains. Sourced after common.sh, toolchain.sh, images.sh and services.sh.

POD_BRIDGE="cj0"
POD_CIDR="10.244.0.0/24"
POD_GATEWAY="10.244.0.1" # the host, as pods see it
NODE_NAME="cj-node"
PAUSE_VERSION="3.10.1" # k8s.io/kubernetes build/pause/Makefile TAG at the pinned release
NODE_OWNER_FILE="/run/cj-devcluster-node.owner"
NODE_SERVICES=(forward-postgres forward-redis forward-kube-apiserver containerd kubelet kube-proxy
  kube-scheduler kube-controller-manager)

# node_mode -> true when this state directory's cluster has a node (`up --node` made it so).
node_mode() { [[ -f "$STATE_DIR/node" ]]; }

load_node_ports() {
  local f="$STATE_DIR/node-ports.env"
  if [[ ! -f "$f" ]]; then
    {
      echo "KAFKA_POD_PORT=$(free_port)"
      echo "KUBELET_PORT=$(free_port)"
      echo "KUBELET_HEALTHZ_PORT=$(free_port)"
      echo "PROXY_HEALTHZ_PORT=$(free_port)"
      echo "PROXY_METRICS_PORT=$(free_port)"
      echo "SCHEDULER_PORT=$(free_port)"
      echo "CONTROLLER_MANAGER_PORT=$(free_port)"
    } >"$f"
  fi
  # shellcheck disable=SC1090
  source "$f"
}

# node_preflight -> exits 1 with one line per reason when this machine cannot run the node.
node_preflight() {
  local why=() cmd
  [[ $(id -u) -eq 0 ]] || why+=("the node needs root (a kubelet, containerd, a bridge, iptables)")
  [[ "$(uname -s)" == Linux ]] || why+=("the node needs Linux")
  for cmd in ip iptables; do
    command -v "$cmd" >/dev/null || why+=("$cmd is missing")
  done
  local ctl
  for ctl in cpu memory pids; do
    [[ -d /sys/fs/cgroup/$ctl || -f /sys/fs/cgroup/cgroup.controllers ]] \
      || why+=("no $ctl cgroup controller mounted at /sys/fs/cgroup/$ctl")
  done
  if [[ $(id -u) -eq 0 ]] && ! ip link show "$POD_BRIDGE" >/dev/null 2>&1; then
    if ip link add cj-preflight0 type bridge 2>/dev/null; then
      ip link delete cj-preflight0
    else
      why+=("the kernel refuses a bridge: ip link add cj-preflight0 type bridge: $(ip link add cj-preflight0 type bridge 2>&1)")
    fi
    if ip link add cj-preflight1 type veth peer name cj-preflight2 2>/dev/null; then
      ip link delete cj-preflight1
    else
      why+=("the kernel refuses a veth pair: $(ip link add cj-preflight1 type veth peer name cj-preflight2 2>&1)")
    fi
  fi
  if [[ -f "$NODE_OWNER_FILE" ]]; then
    local owner
    owner="$(cat "$NODE_OWNER_FILE")"
    if [[ "$owner" != "$STATE_DIR" && -f "$owner/kubelet.pid" ]] && kill -0 "$(cat "$owner/kubelet.pid")" 2>/dev/null; then
      why+=("a node of $owner already runs on this machine (stop it: CJ_DEVCLUSTER_DIR=$owner hack/devcluster down)")
    fi
  fi
  if ((${#why[@]} > 0)); then
    printf 'this machine cannot run the node: %s\n' "${why[@]}" >&2
    return 1
  fi
}

# ensure_node_packages -> the Debian packages the node runs, if missing.
ensure_node_packages() {
  local missing=()
  command -v containerd >/dev/null || missing+=(containerd)
  command -v runc >/dev/null || missing+=(runc)
  [[ -x /usr/lib/cni/bridge ]] || missing+=(containernetworking-plugins)
  command -v conntrack >/dev/null || missing+=(conntrack)
  command -v socat >/dev/null || missing+=(socat)
  command -v iptables >/dev/null || missing+=(iptables)
  ((${#missing[@]} == 0)) && return 0
  log "installing Debian packages: ${missing[*]}"
  apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || {
    apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null
  } || die "apt-get install ${missing[*]} failed"
}

# pause_archive -> OCI archive of the pod sandbox image localhost/cj-pause:<version>: upstream's
# build/pause/linux/pause.c from the pinned k8s.io/kubernetes module, compiled static here.
pause_archive() {
  local src archive ref="localhost/cj-pause:$PAUSE_VERSION"
  src="$(cd "$HACK_DIR/gomod/k8s-node" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c"
  archive="$CACHE_DIR/images/cj-pause-$PAUSE_VERSION-$(file_hash "$src" "${BASH_SOURCE[0]}").oci.tar"
  if [[ ! -f "$archive" ]]; then
    log "images: pause: gcc -static $src"
    local work ctr
    work="$(mktemp -d)"
    gcc -Os -Wall -Werror -static "-DVERSION=v$PAUSE_VERSION-cj-devcluster" -o "$work/pause" "$src" \
      || die "compiling pause.c failed (gcc and libc6-dev are needed)"
    ctr="$(buildah from scratch)"
    buildah copy --quiet "$ctr" "$work/pause" /pause >/dev/null
    # As upstream's image: nobody's uid, the binary as entry point.
    buildah config --user 65535:65535 --entrypoint '["/pause"]' "$ctr"
    buildah commit --quiet --rm "$ctr" "$ref" >/dev/null
    buildah push --quiet "$ref" "oci-archive:$archive.tmp:$ref" >/dev/null || die "buildah push $ref failed"
    mv "$archive.tmp" "$archive"
    rm -rf "$work"
  fi
  printf '%s\n' "$archive"
}

_ctr() { ctr --address "$STATE_DIR/containerd/containerd.sock" --namespace k8s.io "$@"; }

# _load_image ARCHIVE -> the image imported into containerd unless it holds the same manifest.
_load_image() {
  local archive="$1" name digest
  read -r name digest < <(tar -xOf "$archive" index.json | python3 -c 'import json,sys; m=json.load(sys.stdin)["manifests"][0]; print(m["annotations"]["org.opencontainers.image.ref.name"], m["digest"])')
  if [[ "$(_ctr images ls "name==$name" 2>/dev/null | awk 'NR > 1 {print $3}')" != "$digest" ]]; then
    log "node: loading $name into containerd"
    _ctr images import "$archive" >/dev/null || die "ctr images import $archive failed"
  fi
}

_kubectl() { "$(k8s_bin_dir)/kubectl" --kubeconfig "$STATE_DIR/kubeconfig" "$@"; }

# setup_pod_network -> the bridge with the host's pod-side address, forwarding on (pods reach
# each other's Services through the host), bridged traffic through iptables (kube-proxy's NAT).
setup_pod_network() {
  if ! ip link show "$POD_BRIDGE" >/dev/null 2>&1; then
    log "node: bridge $POD_BRIDGE $POD_GATEWAY/${POD_CIDR#*/}"
    ip link add "$POD_BRIDGE" type bridge
  fi
  ip addr replace "$POD_GATEWAY/${POD_CIDR#*/}" dev "$POD_BRIDGE"
  ip link set "$POD_BRIDGE" up
  sysctl -q -w net.ipv4.ip_forward=1
  [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] && sysctl -q -w net.bridge.bridge-nf-call-iptables=1
  printf '%s\n' "$STATE_DIR" >"$NODE_OWNER_FILE"
}

# _forward NAME PORT -> socat relaying POD_GATEWAY:PORT to 127.0.0.1:PORT (the service there
# sees a loopback client, as with every other local client).
_forward() {
  _spawn "forward-$1" socat "TCP-LISTEN:$2,bind=$POD_GATEWAY,fork,reuseaddr" "TCP:127.0.0.1:$2"
  wait_for "forward-$1" 10 bash -c "exec 3<>/dev/tcp/$POD_GATEWAY/$2" || _fail_start "forward-$1"
}
start_forward_postgres() { _forward postgres "$PG_PORT"; }
start_forward_redis() { _forward redis "$REDIS_PORT"; }
start_forward_kube_apiserver() { _forward kube-apiserver "$APISERVER_PORT"; }

start_containerd() {
  local dir="$STATE_DIR/containerd" pause
  mkdir -p "$dir" "$STATE_DIR/cni/net.d"
  pause="localhost/cj-pause:$PAUSE_VERSION"
  cat >"$dir/config.toml" <<TOML
# Written by hack/lib/node.sh. containerd 1.6 (Debian), only what the kubelet needs.
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$dir/containerd.sock"
[ttrpc]
  address = "$dir/containerd.sock.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  # The pause image built here (localhost/cj-pause); nothing is pulled from a registry.
  sandbox_image = "$pause"
  netns_mounts_under_state_dir = true
  # No CAP_SYS_RESOURCE here (a VM sandbox): an oom_score_adj below containerd's own is refused
  # ("failed to update /proc/self/oom_score_adj: Permission denied"), so clamp to it.
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # cgroups v1 (hybrid) and no systemd: the cgroupfs driver, as the kubelet's.
        SystemdCgroup = false
        BinaryName = "$(command -v runc)"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE_DIR/cni/net.d"
TOML
  cat >"$STATE_DIR/cni/net.d/10-cj-pods.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "cj-pods",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$POD_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$POD_GATEWAY"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$STATE_DIR/cni/ipam"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
  _spawn containerd containerd --config "$dir/config.toml"
  wait_for containerd 30 ctr --address "$dir/containerd.sock" version || _fail_start containerd
  local archive
  for archive in "$(pause_archive)" "${NODE_IMAGE_ARCHIVES[@]}"; do
    _load_image "$archive"
  done
}

start_kubelet() {
  local dir="$STATE_DIR/kubelet" bin
  bin="$(k8s_node_bin_dir)"
  mkdir -p "$dir"
  cat >"$dir/config.yaml" <<YAML
# Written by hack/lib/node.sh.
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroups v1 (hybrid mount) on these machines: allowed explicitly since 1.35; no systemd.
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$STATE_DIR/containerd/containerd.sock
address: $POD_GATEWAY
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $STATE_DIR/pki/ca.crt}
authorization: {mode: AlwaysAllow}
podCIDR: $POD_CIDR
podLogsDir: $dir/pod-logs
# No cluster DNS here: pods fall back to the host's resolver.
resolvConf: /etc/resolv.conf
maxPods: 40
failSwapOn: false
# The images are loaded, never pulled: never collect them; evict only on real shortage.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 200Mi, nodefs.available: 2%, imagefs.available: 2%, nodefs.inodesFree: 2%}
serializeImagePulls: false
shutdownGracePeriod: 0s
YAML
  _spawn kubelet "$bin/kubelet" --config "$dir/config.yaml" --kubeconfig "$STATE_DIR/kubeconfig" \
    --root-dir "$dir/root" --cert-dir "$dir/pki" --hostname-override "$NODE_NAME" \
    --node-ip "$POD_GATEWAY" --v=1
  wait_for kubelet 90 _node_ready || _fail_start kubelet
}

_node_ready() {
  curl -fsS "http://127.0.0.1:$KUBELET_HEALTHZ_PORT/healthz" >/dev/null \
    && [[ "$(_kubectl get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}

start_kube_proxy() {
  local dir="$STATE_DIR/kube-proxy" bin
  bin="$(k8s_node_bin_dir)"
  mkdir -p "$dir"
  cat >"$dir/config.yaml" <<YAML
# Written by hack/lib/node.sh.
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $STATE_DIR/kubeconfig}
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $POD_CIDR
healthzBindAddress: 127.0.0.1:$PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$PROXY_METRICS_PORT
nodePortAddresses: [$POD_GATEWAY/32]
# Leave the machine's conntrack settings as they are.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YAML
  _spawn kube-proxy "$bin/kube-proxy" --config "$dir/config.yaml" --v=1
  wait_for kube-proxy 60 curl -fsS "http://127.0.0.1:$PROXY_HEALTHZ_PORT/healthz" || _fail_start kube-proxy
}

start_kube_scheduler() {
  local bin
  bin="$(k8s_node_bin_dir)"
  _spawn kube-scheduler "$bin/kube-scheduler" --kubeconfig "$STATE_DIR/kubeconfig" \
    --authentication-kubeconfig "$STATE_DIR/kubeconfig" --authorization-kubeconfig "$STATE_DIR/kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" --leader-elect=false --v=1
  wait_for kube-scheduler 60 curl -fsSk "https://127.0.0.1:$SCHEDULER_PORT/healthz" || _fail_start kube-scheduler
}

start_kube_controller_manager() {
  local bin pki="$STATE_DIR/pki"
  bin="$(k8s_node_bin_dir)"
  # The service-account key signs tokens; the CA goes into every namespace's kube-root-ca.crt.
  _spawn kube-controller-manager "$bin/kube-controller-manager" --kubeconfig "$STATE_DIR/kubeconfig" \
    --authentication-kubeconfig "$STATE_DIR/kubeconfig" --authorization-kubeconfig "$STATE_DIR/kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$CONTROLLER_MANAGER_PORT" --leader-elect=false \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    --use-service-account-credentials=false --cluster-name devcluster --v=1
  wait_for kube-controller-manager 60 curl -fsSk "https://127.0.0.1:$CONTROLLER_MANAGER_PORT/healthz" \
    || _fail_start kube-controller-manager
}

# stop_node -> the node's pods removed through the kubelet (so CNI releases their addresses and
# interfaces), then its processes, kube-proxy's iptables chains and the bridge.
stop_node() {
  stop_service kube-controller-manager
  stop_service kube-scheduler
  if pid_alive kubelet && pid_alive kube-apiserver; then
    _kubectl delete pods --all-namespaces --all --grace-period=2 --timeout=60s --wait >/dev/null 2>&1 || true
  fi
  stop_service kubelet
  if pid_alive containerd; then
    local task
    for task in $(_ctr tasks ls -q 2>/dev/null); do _ctr tasks kill -s SIGKILL "$task" >/dev/null 2>&1 || true; done
    sleep 1
    for task in $(_ctr tasks ls -q 2>/dev/null); do _ctr tasks delete -f "$task" >/dev/null 2>&1 || true; done
  fi
  if pid_alive kube-proxy; then
    stop_service kube-proxy
    "$(k8s_node_bin_dir)/kube-proxy" --cleanup >/dev/null 2>&1 || true
  fi
  _cleanup_kubelet_iptables
  stop_service containerd
  # What the kubelet or containerd left mounted under the state directory (token volumes,
  # sandbox network namespaces, snapshots), deepest first.
  local mount
  awk -v prefix="$STATE_DIR/" 'index($2, prefix) == 1 {print $2}' /proc/self/mounts | sort -r \
    | while read -r mount; do umount "$mount" 2>/dev/null || umount -l "$mount" 2>/dev/null || true; done
  stop_service forward-kube-apiserver
  stop_service forward-redis
  stop_service forward-postgres
  if [[ -f "$NODE_OWNER_FILE" && "$(cat "$NODE_OWNER_FILE")" == "$STATE_DIR" ]]; then
    ip link delete "$POD_BRIDGE" 2>/dev/null || true
    rm -f "$NODE_OWNER_FILE"
  fi
}

# _cleanup_kubelet_iptables -> the chains the kubelet itself adds (kube-proxy --cleanup leaves
# them): KUBE-FIREWALL (drops non-loopback packets to 127/8), the canaries, the hint.
_cleanup_kubelet_iptables() {
  local ipt table chain
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null || continue
    while "$ipt" -D INPUT -j KUBE-FIREWALL 2>/dev/null; do :; done
    while "$ipt" -D OUTPUT -j KUBE-FIREWALL 2>/dev/null; do :; done
    for table in filter nat mangle; do
      for chain in KUBE-FIREWALL KUBE-KUBELET-CANARY KUBE-IPTABLES-HINT; do
        "$ipt" -t "$table" -F "$chain" 2>/dev/null && "$ipt" -t "$table" -X "$chain" 2>/dev/null || true
      done
    done
  done
}
