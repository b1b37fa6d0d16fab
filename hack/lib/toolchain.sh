# shellcheck shell=bash
# Installs and builds the local cluster's components from package registries, idempotently.
# Every build lands in CACHE_DIR under a directory named for its version and the hash of the
# file that pins it, so a changed pin builds anew and an unchanged one is reused at once.
# Sourced after common.sh.

UV_VERSION="0.13.8"

# ensure_debian_packages -> PostgreSQL 15, Redis 7, openssl and Chromium (headless, for the
# test of `cjctl report`'s page) from Debian, if missing.
ensure_debian_packages() {
  local missing=()
  [[ -x /usr/lib/postgresql/15/bin/postgres ]] || missing+=(postgresql-15)
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v chromium >/dev/null || missing+=(chromium)
  ((${#missing[@]} == 0)) && return 0
  log "installing Debian packages: ${missing[*]}"
  local sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
    $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  } || die "apt-get install ${missing[*]} failed"
  # The Debian package starts no server here (no systemd); ours are started by devcluster.
}

# uv_bin -> path of a pinned uv, installed from PyPI into the cache on first use.
uv_bin() {
  local dir="$CACHE_DIR/uv-$UV_VERSION"
  if [[ ! -x "$dir/bin/uv" ]]; then
    log "installing uv $UV_VERSION from PyPI"
    rm -rf "$dir"
    python3 -m venv "$dir" >&2
    "$dir/bin/python" -m pip install -q "uv==$UV_VERSION" >&2 || die "pip install uv==$UV_VERSION failed"
  fi
  printf '%s\n' "$dir/bin/uv"
}

# _go_build NAME MODULE_DIR BINARY=PACKAGE... -> builds Go main packages of a wrapper module
# into CACHE_DIR/NAME-<version>-<hash of go.mod and go.sum>/bin and prints that bin directory.
_go_build() {
  local name="$1" moddir="$2"; shift 2
  local version out spec missing=()
  version="$(awk '$1 ~ /^(k8s.io\/kubernetes|go.etcd.io\/etcd\/server\/v3|helm.sh\/helm\/v3)$/ {print $2; exit}' "$moddir/go.mod")"
  out="$CACHE_DIR/$name-${version:-unknown}-$(printf '%s' "${GO_LDFLAGS_X:-}" | cat - "$moddir/go.mod" "$moddir/go.sum" | sha256sum | cut -c1-10)/bin"
  for spec in "$@"; do [[ -x "$out/${spec%%=*}" ]] || missing+=("$spec"); done
  if ((${#missing[@]} > 0)); then
    log "building $name $version from the Go module proxy (cold: several minutes on 2 cores)"
    local start=$SECONDS
    mkdir -p "$out"
    for spec in "${missing[@]}"; do
      log "  go build ${spec#*=}"
      (cd "$moddir" && nice -n 10 go build -trimpath -ldflags="-s -w ${GO_LDFLAGS_X:-}" -o "$out/${spec%%=*}.tmp" "${spec#*=}") >&2 \
        || die "go build ${spec#*=} failed (see above)"
      mv "$out/${spec%%=*}.tmp" "$out/${spec%%=*}"
    done
    log "built $name $version in $((SECONDS - start)) s"
  fi
  printf '%s\n' "$out"
}

# _k8s_version_stamps MODULE_DIR -> the -X flags the release build stamps its version with;
# without them the binaries report v0.0.0-master and kubectl and helm refuse to parse the
# server version.
_k8s_version_stamps() {
  local v m n p ldx=""
  v="$(awk '$1 == "k8s.io/kubernetes" {print $2; exit}' "$1/go.mod")"
  IFS=. read -r m n p <<<"${v#v}"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldx+=" -X $p.gitVersion=$v -X $p.gitMajor=$m -X $p.gitMinor=$n -X $p.gitTreeState=clean"
  done
  printf '%s' "$ldx"
}

k8s_bin_dir() {
  GO_LDFLAGS_X="$(_k8s_version_stamps "$HACK_DIR/gomod/k8s")" _go_build k8s "$HACK_DIR/gomod/k8s" \
    kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver kubectl=k8s.io/kubernetes/cmd/kubectl
}

# k8s_node_bin_dir -> folder holding kubelet, kube-proxy, kube-scheduler and
# kube-controller-manager, built from hack/gomod/k8s-node (the same k8s.io/kubernetes release as
# k8s_bin_dir) for `hack/devcluster up --node` only.
k8s_node_bin_dir() {
  GO_LDFLAGS_X="$(_k8s_version_stamps "$HACK_DIR/gomod/k8s-node")" \
    _go_build k8s-node "$HACK_DIR/gomod/k8s-node" \
    kubelet=k8s.io/kubernetes/cmd/kubelet kube-proxy=k8s.io/kubernetes/cmd/kube-proxy \
    kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler \
    kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager
}

etcd_bin_dir() {
  _go_build etcd "$HACK_DIR/gomod/etcd" etcd=go.etcd.io/etcd/server/v3
}

# kafka_lib_dir -> the broker's class path folder, resolved from Maven Central by hack/kafka/pom.xml.
kafka_lib_dir() {
  local pom="$HACK_DIR/kafka/pom.xml" version out
  version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")"
  out="$CACHE_DIR/kafka-$version-$(file_hash "$pom")/lib"
  if [[ ! -f "$out/.complete" ]]; then
    log "resolving Apache Kafka $version jars from Maven Central"
    rm -rf "$out"
    mvn -q -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$out" >"$CACHE_DIR/mvn-kafka.log" 2>&1 \
      || { cat "$CACHE_DIR/mvn-kafka.log" >&2; die "mvn dependency:copy-dependencies failed"; }
    touch "$out/.complete"
  fi
  printf '%s\n' "$out"
}

# helm_bin_dir -> folder holding helm, built from the wrapper module hack/gomod/helm (which pins
# helm.sh/helm/v3) and cached by _go_build under helm-<version>-...-<hash of go.mod, go.sum and
# the stamps>. The -X stamps are those of helm's release Makefile: the version `helm version`
# prints, and the Kubernetes version `helm template`/`helm lint` assume without a cluster
# (major = client-go's v0 + 1, minor = client-go's minor, e.g. v0.37.0 -> 1.37).
helm_bin_dir() {
  local mod="$HACK_DIR/gomod/helm" v kv km kn p ldx
  v="$(awk '$1 == "helm.sh/helm/v3" {print $2; exit}' "$mod/go.mod")"
  kv="$(awk '$1 == "k8s.io/client-go" {print $2; exit}' "$mod/go.mod")"
  IFS=. read -r km kn _ <<<"${kv#v}"
  ldx=" -X helm.sh/helm/v3/internal/version.version=$v"
  ldx+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ldx+=" -X $p.k8sVersionMajor=$((km + 1)) -X $p.k8sVersionMinor=$kn"
  done
  GO_LDFLAGS_X="$ldx" _go_build helm "$mod" helm=helm.sh/helm/v3/cmd/helm
}

# prometheus_bin -> path of the Prometheus server from the Debian package `prometheus` (which
# also installs promtool beside it), installed with apt-get when missing. Nothing is started:
# the tests run their own Prometheus with their own configuration and data directory.
prometheus_bin() {
  if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
    log "installing Debian package: prometheus"
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    # --no-install-recommends: the node exporter it recommends is not needed here.
    $sudo apt-get install -y -q --no-install-recommends prometheus >/dev/null 2>&1 || {
      $sudo apt-get update -q >/dev/null \
        && $sudo apt-get install -y -q --no-install-recommends prometheus >/dev/null
    } || die "apt-get install prometheus failed"
  fi
  command -v prometheus
}

# ensure_toolchain -> every component built or installed; prints nothing on a warm cache.
ensure_toolchain() {
  mkdir -p "$CACHE_DIR"
  ensure_debian_packages
  kafka_lib_dir >/dev/null
  etcd_bin_dir >/dev/null
  k8s_bin_dir >/dev/null
  helm_bin_dir >/dev/null
  prometheus_bin >/dev/null
}
