# shellcheck shell=bash
# Container images built on this machine, from Debian's packages and the project's own
# files, with no image registry: a base root from debootstrap, then Postgres, Garage,
# curl+jq and filegate (with ffmpeg) on it. Sourced after stack.sh by scripts/images
# and scripts/test.
#
# The Docker engine is Debian's docker.io (20.10): its client is /usr/bin/docker (a newer
# client elsewhere on the PATH may lack buildx), its BuildKit builds only the stages a
# target needs, and compose v1 is docker-compose. A daemon these scripts start is told to
# reach registries only through a proxy that does not exist, so nothing can be pulled;
# every image a compose file or test names must already be local.

DOCKER="${FILEGATE_DOCKER:-/usr/bin/docker}"
COMPOSE="${FILEGATE_COMPOSE:-/usr/bin/docker-compose}"
export DOCKER_BUILDKIT=1 COMPOSE_DOCKER_CLI_BUILD=1 DOCKER_CLI_HINTS=false
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR="${FILEGATE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DOCKERD_LOG="$FILEGATE_CACHE/dockerd.log"

# Names of the local images (the tags carry a digest of what went into each).
BASE_IMAGE=filegate-local/debian:$DEBIAN_SUITE-slim
POSTGRES_IMAGE=filegate-local/postgres:15
GARAGE_IMAGE=filegate-local/garage:$GARAGE_VERSION
TOOLS_IMAGE=filegate-local/tools:1
FILEGATE_IMAGE=filegate:local

docker_up() { "$DOCKER" info >/dev/null 2>&1; }

# Debian's engine, client, compose v1 and debootstrap; a daemon when none answers.
ensure_docker() {
  [ -x "$DOCKER" ] || apt_install docker.io
  [ -x "$COMPOSE" ] || apt_install docker-compose
  command -v debootstrap >/dev/null || apt_install debootstrap
  [ -x "$DOCKER" ] && [ -x "$COMPOSE" ] && command -v debootstrap >/dev/null \
    || die "docker.io, docker-compose or debootstrap could not be installed"
  docker_up && return 0
  [ "$(id -u)" = 0 ] || die "no Docker daemon answers and only root can start one here"
  mkdir -p "$FILEGATE_CACHE"
  log "starting dockerd (log: $DOCKERD_LOG; registries unreachable by design)"
  # The proxy refuses every connection: a pull fails at once instead of reaching a
  # registry, and the failure is in the log.
  HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY= \
    setsid /usr/sbin/dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
  wait_for 60 "dockerd" docker_up
}

# Registry requests the daemon made since line SINCE of its log (none is the rule).
registry_attempts() { # registry_attempts SINCE
  [ -f "$DOCKERD_LOG" ] || return 0
  tail -n +"$1" "$DOCKERD_LOG" | grep -iE 'pull|registry-1\.docker\.io|auth\.docker\.io|index\.docker\.io' || true
}

dockerd_log_lines() { [ -f "$DOCKERD_LOG" ] && wc -l <"$DOCKERD_LOG" || echo 0; }

image_exists() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

# A digest of files and words: the key of a cached root or image.
inputs_digest() { # inputs_digest WORD|FILE...
  local x
  for x in "$@"; do
    if [ -f "$x" ]; then sha256sum "$x"; else printf '%s\n' "$x"; fi
  done | sha256sum | cut -c1-16
}

# The base: a minbase Debian root from debootstrap, cached as a tarball keyed by suite
# and mirror, imported as $BASE_IMAGE.
ensure_base_image() {
  local key; key=$(inputs_digest "$DEBIAN_SUITE" minbase "$DEBIAN_MIRROR" v1)
  image_exists "$BASE_IMAGE-$key" && { "$DOCKER" tag "$BASE_IMAGE-$key" "$BASE_IMAGE"; return 0; }
  local tarball="$FILEGATE_CACHE/images/debian-$DEBIAN_SUITE-minbase-$key.tar"
  if [ ! -s "$tarball" ]; then
    local root; root=$(mktemp -d "${TMPDIR:-/tmp}/filegate-root.XXXXXX")
    log "debootstrapping Debian $DEBIAN_SUITE (minbase) from $DEBIAN_MIRROR (once; under a minute)"
    debootstrap --variant=minbase "$DEBIAN_SUITE" "$root" "$DEBIAN_MIRROR" >"$root.log" 2>&1 \
      || { tail -n 20 "$root.log" >&2; rm -rf "$root" "$root.log"; die "debootstrap failed"; }
    # Like the slim images: no package lists, caches or docs.
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/usr/share/doc/* \
      "$root"/usr/share/man/* "$root"/usr/share/locale/*
    mkdir -p "$(dirname "$tarball")"
    tar -C "$root" --numeric-owner -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball" \
      || die "could not write $tarball"
    rm -rf "$root" "$root.log"
  fi
  log "importing $BASE_IMAGE"
  "$DOCKER" import -c 'CMD ["/bin/bash"]' -c 'ENV LANG=C.UTF-8' "$tarball" "$BASE_IMAGE-$key" >/dev/null \
    || die "docker import of $tarball failed"
  "$DOCKER" tag "$BASE_IMAGE-$key" "$BASE_IMAGE" || die "could not tag $BASE_IMAGE"
}

# docker build, skipped when an image of these inputs exists; NAME is tagged too.
build_image() { # build_image NAME KEY CONTEXT [docker build args...]
  local name=$1 key=$2 context=$3; shift 3
  if ! image_exists "$name-$key"; then
    log "building $name"
    "$DOCKER" build -q -t "$name-$key" "$@" "$context" >/dev/null || die "building $name failed"
  fi
  "$DOCKER" tag "$name-$key" "$name" || die "could not tag $name"
}

# Every image the compose stack and the containers suite use, built locally. Each step
# dies on failure itself: callers may run this where set -e does not hold.
ensure_images() {
  ensure_docker
  ensure_garage
  ensure_base_image
  local base_id; base_id=$("$DOCKER" image inspect -f '{{.Id}}' "$BASE_IMAGE") || die "no $BASE_IMAGE"
  local d="$ROOT/deploy/images"
  build_image "$POSTGRES_IMAGE" "$(inputs_digest "$base_id" "$d/postgres/Dockerfile" "$d/postgres/entrypoint.sh")" \
    "$d/postgres" --build-arg BASE_IMAGE="$BASE_IMAGE"
  build_image "$TOOLS_IMAGE" "$(inputs_digest "$base_id" "$d/tools/Dockerfile")" \
    "$d/tools" --build-arg BASE_IMAGE="$BASE_IMAGE"
  # Garage's binary from the cache, as the stage the Garage Dockerfile copies it from.
  local bin_key; bin_key=$(inputs_digest "$GARAGE_BIN")
  if ! image_exists "filegate-local/garage-bin:$bin_key"; then
    local ctx; ctx=$(mktemp -d "${TMPDIR:-/tmp}/filegate-garage.XXXXXX")
    cp "$GARAGE_BIN" "$ctx/garage"
    printf 'FROM scratch\nCOPY garage /garage\n' >"$ctx/Dockerfile"
    "$DOCKER" build -q -t "filegate-local/garage-bin:$bin_key" "$ctx" >/dev/null \
      || die "building the Garage binary's image failed"
    rm -rf "$ctx"
  fi
  build_image "$GARAGE_IMAGE" "$(inputs_digest "$base_id" "$bin_key" "$d/garage/Dockerfile")" \
    "$d/garage" --build-arg BASE_IMAGE="$BASE_IMAGE" \
    --build-arg GARAGE_SOURCE_IMAGE="filegate-local/garage-bin:$bin_key"
  # filegate from the binary cargo built (debug for the tests unless told otherwise).
  local binary="${FILEGATE_IMAGE_BINARY:-target/debug/filegate}"
  [ -x "$ROOT/$binary" ] || die "$binary is missing: build it first"
  # The key covers deploy/Dockerfile, so a change to the packages it installs (ffmpeg)
  # builds anew rather than reusing an image made without them.
  build_image "$FILEGATE_IMAGE" "$(inputs_digest "$base_id" "$ROOT/$binary" "$ROOT/deploy/Dockerfile")" \
    "$ROOT" -f "$ROOT/deploy/Dockerfile" --target prebuilt \
    --build-arg RUNTIME_IMAGE="$BASE_IMAGE" --build-arg BINARY="$binary"
  # The video processor's ffmpeg and ffprobe must run in the image, as its own user,
  # under util-linux's prlimit (which bounds them).
  "$DOCKER" run --rm --network none --entrypoint /bin/sh "$FILEGATE_IMAGE" \
    -c 'prlimit --as=2147483648 -- ffmpeg -hide_banner -version && prlimit -- ffprobe -hide_banner -version' >/dev/null \
    || die "$FILEGATE_IMAGE has no working prlimit, ffmpeg and ffprobe"
}

# Refuses to go on when a compose file names an image that is not local.
require_local_images() { # require_local_images COMPOSE_FILE... (with the env it runs with)
  local f image missing=()
  for f in "$@"; do
    while read -r image; do
      [ -n "$image" ] && ! image_exists "$image" && missing+=("$image")
    done < <("$COMPOSE" -f "$f" config | awk '$1 == "image:" { print $2 }' | sort -u)
  done
  [ ${#missing[@]} -eq 0 ] || die "not built locally (and never pulled): ${missing[*]}"
}
