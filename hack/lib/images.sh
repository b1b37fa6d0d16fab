# shellcheck shell=bash
# The two images, built without a Docker engine: buildah (Debian package) builds
# docker/operator.Dockerfile and docker/workers.Dockerfile themselves, with two base images made
# here because there is no registry to pull them from:
#   - the Python base: a Debian bookworm root filesystem with python3.11 (mmdebstrap), standing
#     in for python:3.11-slim-bookworm;
#   - the uv image: the pinned uv binary (uv_bin) as /uv, standing in for ghcr.io/astral-sh/uv.
# The project's wheels come from the package index inside the build, as with `docker build`.
# Each image is tagged with the chart's appVersion and exported as an OCI archive under
# CACHE_DIR/images, in a file named for that version and a hash of the build's inputs, so a warm
# `make images` only checks hashes. Images live in a containers-storage of their own
# (CACHE_DIR/containers), configured for this machine: runc with the cgroupfs manager (crun
# refuses hybrid cgroups) and no default ulimits (podman's defaults are refused here).
# Sourced after common.sh and toolchain.sh.

IMAGE_NAMES=(operator workers)
DEBIAN_SUITE="bookworm"
BASE_PYTHON="python3.11"
# Fixed file times in the base root filesystem, so the same packages give the same archive.
BASE_SOURCE_DATE_EPOCH=1735689600 # 2025-01-01

# chart_app_version -> the appVersion of charts/cj-operator/Chart.yaml (the images' tag).
chart_app_version() {
  sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' "$REPO_ROOT/charts/cj-operator/Chart.yaml"
}

# image_ref NAME -> the reference the chart's default values resolve to, e.g.
# docker.io/library/cj-operator:0.1.0 for `image: cj-operator:0.1.0`.
image_ref() {
  printf 'docker.io/library/cj-%s:%s\n' "$1" "$(chart_app_version)"
}

# ensure_image_packages -> buildah, podman, runc and mmdebstrap from Debian, if missing.
ensure_image_packages() {
  local missing=() cmd
  for cmd in buildah podman runc mmdebstrap; do
    command -v "$cmd" >/dev/null || missing+=("$cmd")
  done
  ((${#missing[@]} == 0)) && return 0
  log "installing Debian packages: ${missing[*]}"
  local sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || {
    $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q "${missing[@]}" >/dev/null
  } || die "apt-get install ${missing[*]} failed"
}

# containers_env -> exports CONTAINERS_CONF and CONTAINERS_STORAGE_CONF, which buildah and
# podman read, pointing at files written under CACHE_DIR/containers.
containers_env() {
  local dir="$CACHE_DIR/containers"
  mkdir -p "$dir/storage" "$dir/tmp"
  cat >"$dir/containers.conf.tmp" <<'CONF'
# Written by hack/lib/images.sh. This machine: cgroups v1 with a hybrid v2 mount.
[containers]
# podman's default ulimits (nproc) are refused here.
default_ulimits = []
[engine]
# crun refuses hybrid cgroups ("cgroups in hybrid mode not supported"); runc runs.
runtime = "runc"
# No systemd: cgroups are made by the runtime itself.
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
  cat >"$dir/storage.conf.tmp" <<CONF
# Written by hack/lib/images.sh: the project's images, apart from any other containers-storage.
[storage]
driver = "overlay"
graphroot = "$dir/storage"
runroot = "${XDG_RUNTIME_DIR:-/run}/cj-operator-containers-$(id -u)"
CONF
  mv "$dir/containers.conf.tmp" "$dir/containers.conf"
  mv "$dir/storage.conf.tmp" "$dir/storage.conf"
  export CONTAINERS_CONF="$dir/containers.conf" CONTAINERS_STORAGE_CONF="$dir/storage.conf"
  # buildah keeps RUN --mount=type=cache folders (uv's download cache) and its scratch files
  # under TMPDIR: in the project's cache too, not /var/tmp.
  export TMPDIR="$dir/tmp"
}

# _has_image REF -> true when the project's containers-storage holds REF.
_has_image() { buildah inspect --type image "$1" >/dev/null 2>&1; }

# _base_recipe -> the mmdebstrap arguments of the Python base (its cache key is their hash).
# minbase with python3.11, CA certificates (uv in the build stage) and passwd (useradd in the
# runtime stage); merged /usr set up by mmdebstrap's hook instead of the usrmerge package (which
# would bring perl); no recommends, documentation, manual pages or translations.
_base_recipe() {
  printf '%s\n' --variant=minbase --mode=root \
    "--include=$BASE_PYTHON,ca-certificates,passwd" \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    '--aptopt=APT::Install-Recommends "false"' \
    '--dpkgopt=path-exclude=/usr/share/doc/*' '--dpkgopt=path-include=/usr/share/doc/*/copyright' \
    '--dpkgopt=path-exclude=/usr/share/man/*' '--dpkgopt=path-exclude=/usr/share/info/*' \
    '--dpkgopt=path-exclude=/usr/share/locale/*' \
    "$DEBIAN_SUITE"
}

# base_image -> the reference of the Python base image, built (mmdebstrap of Debian packages)
# and imported when missing.
base_image() {
  local key ref tar
  key="$(_base_recipe | sha256sum | cut -c1-10)"
  ref="localhost/cj-python-base:3.11-$DEBIAN_SUITE-$key"
  tar="$CACHE_DIR/images/python-base-3.11-$DEBIAN_SUITE-$key.tar"
  if ! _has_image "$ref"; then
    if [[ ! -f "$tar" ]]; then
      log "images: base: mmdebstrap $DEBIAN_SUITE with $BASE_PYTHON from the Debian mirror (cold: about 3 min)"
      local start=$SECONDS args=()
      mkdir -p "$CACHE_DIR/images"
      mapfile -t args < <(_base_recipe)
      SOURCE_DATE_EPOCH=$BASE_SOURCE_DATE_EPOCH nice -n 10 mmdebstrap --quiet --format=tar "${args[@]}" "$tar.tmp" \
        >"$CACHE_DIR/images/mmdebstrap.log" 2>&1 \
        || { tail -n 30 "$CACHE_DIR/images/mmdebstrap.log" >&2; rm -f "$tar.tmp"; die "mmdebstrap failed"; }
      mv "$tar.tmp" "$tar"
      log "images: base: root filesystem of $(du -m "$tar" | cut -f1) MB in $((SECONDS - start)) s"
    fi
    log "images: base: importing $ref"
    # What python:3.11-slim-bookworm sets besides its files.
    podman import --quiet \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' \
      "$tar" "$ref" >/dev/null || die "podman import $tar failed"
  fi
  printf '%s\n' "$ref"
}

# uv_image -> the reference of an image holding the pinned uv at /uv (what the Dockerfiles copy
# from ghcr.io/astral-sh/uv), made from uv_bin when missing.
uv_image() {
  local ref="localhost/cj-uv:$UV_VERSION" uv ctr
  if ! _has_image "$ref"; then
    uv="$(uv_bin)"
    log "images: uv: $ref from $uv"
    ctr="$(buildah from scratch)"
    buildah copy --quiet "$ctr" "$uv" /uv >/dev/null
    buildah commit --quiet --rm "$ctr" "$ref" >/dev/null || die "buildah commit $ref failed"
  fi
  printf '%s\n' "$ref"
}

# _image_inputs NAME -> the files the build of image NAME reads: its Dockerfile, .dockerignore,
# what its COPY lines name (read from the Dockerfile, minus what .dockerignore keeps out) and this
# file (the way it is built).
_image_inputs() {
  local dockerfile="docker/$1.Dockerfile" src
  printf '%s\n' "$dockerfile" .dockerignore hack/lib/images.sh
  sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$REPO_ROOT/$dockerfile" \
    | awk '$1 == "COPY" && $2 !~ /^--from=/ { for (i = 2; i < NF; i++) print $i }' \
    | while read -r src; do
      (cd "$REPO_ROOT" && find "${src%/}" -type f \
        -not -path '*/__pycache__/*' -not -name '*.pyc' -not -path '*/.mypy_cache/*' \
        -not -path '*/.pytest_cache/*' -not -path '*/.ruff_cache/*')
    done
}

# image_archive NAME -> path of NAME's OCI archive for the current inputs (may not exist yet).
# The hash covers the inputs' paths and contents and the base and uv images' references.
image_archive() {
  local name="$1" hash
  hash="$(
    cd "$REPO_ROOT"
    { printf '%s\n' "$(_base_recipe | sha256sum)" "$UV_VERSION"; _image_inputs "$name" | sort -u | xargs sha256sum; } \
      | sha256sum | cut -c1-10
  )"
  printf '%s\n' "$CACHE_DIR/images/cj-$name-$(chart_app_version)-$hash.oci.tar"
}

# build_image NAME -> NAME's image built with buildah from its Dockerfile (unless its archive for
# the same inputs exists), present in the containers-storage, and exported; prints the archive.
build_image() {
  local name="$1" ref archive
  ref="$(image_ref "$name")"
  archive="$(image_archive "$name")"
  if [[ -f "$archive" ]]; then
    # The storage's image is this archive's when its id is the one recorded beside it.
    if [[ "$(_image_id "$ref")" != "$(cat "$archive.id" 2>/dev/null)" ]]; then
      log "images: $name: loading $ref from $archive"
      buildah pull --quiet "oci-archive:$archive" >/dev/null || die "buildah pull oci-archive:$archive failed"
      _image_id "$ref" >"$archive.id"
    fi
    printf '%s\n' "$archive"
    return 0
  fi
  local base uv start=$SECONDS logf="$CACHE_DIR/images/build-$name.log" ca_args=()
  base="$(base_image)"
  uv="$(uv_image)"
  # The build stage downloads the locked wheels: it trusts what this machine trusts (a TLS
  # proxy's CA, say). The machine's CA bundle is mounted over the base's for the RUN steps only
  # (a volume over an existing file: nothing of it is committed); the Dockerfiles' build stage
  # has uv read that store (UV_SYSTEM_CERTS). The images keep Debian's bundle.
  local bundle="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}"
  [[ -f "$bundle" ]] && ca_args=(--volume "$bundle:/etc/ssl/certs/ca-certificates.crt:ro")
  log "images: $name: buildah bud -f docker/$name.Dockerfile -t $ref (log: $logf)"
  # Two passes: the build stage alone, tagged, so that its layers (the locked dependencies above
  # all) stay in the storage as the next build's cache; then the whole file, which reuses them.
  local pass
  : >"$logf"
  for pass in "--target=build -t localhost/cj-$name-build:latest" "-t $ref"; do
    # shellcheck disable=SC2086 # $pass: two words on purpose
    if ! (
      cd "$REPO_ROOT"
      nice -n 10 buildah bud --layers --pull=never --network=host \
        --build-arg "PYTHON_IMAGE=$base" --build-arg "UV_IMAGE=$uv" "${ca_args[@]}" \
        -f "docker/$name.Dockerfile" $pass . 2>&1
    ) | tee -a "$logf" | { grep --line-buffered -E '^(\[[0-9]/[0-9]\] )?STEP [0-9]+/[0-9]+' || true; } \
      | sed -u "s/^/[images $name] /" >&2; then
      tail -n 30 "$logf" >&2
      die "buildah bud docker/$name.Dockerfile failed (log: $logf)"
    fi
  done
  rm -f "$archive.tmp"
  buildah push --quiet "$ref" "oci-archive:$archive.tmp:$ref" >/dev/null || die "buildah push $ref failed"
  _image_id "$ref" >"$archive.id"
  mv "$archive.tmp" "$archive"
  # Older archives of this image are superseded by this one, and so are the storage's images of
  # earlier builds (untagged now); the tagged images keep their layers.
  find "$CACHE_DIR/images" -maxdepth 1 -name "cj-$name-*.oci.tar*" ! -path "$archive" ! -path "$archive.id" -delete
  podman image prune --force >/dev/null || true
  log "images: $name: built in $((SECONDS - start)) s, $(du -m "$archive" | cut -f1) MB archive"
  printf '%s\n' "$archive"
}

# _image_id REF -> the id of REF in the containers-storage (empty when missing).
_image_id() { buildah inspect --type image --format '{{.FromImageID}}' "$1" 2>/dev/null || true; }

# ensure_images -> both images built and exported; prints one archive path per line.
ensure_images() {
  ensure_image_packages
  containers_env
  local name
  for name in "${IMAGE_NAMES[@]}"; do
    build_image "$name"
  done
}
