# shellcheck shell=bash
# Shared by scripts/dev, scripts/test and scripts/bench: find or start Postgres,
# install (once, cached outside the clone) and start Garage, and small helpers.
# Everything a run starts is recorded so that it stops exactly what it started.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
FILEGATE_CACHE="${FILEGATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/filegate}"
GARAGE_VERSION="2.5.0"
GARAGE_BIN="${GARAGE_BIN:-$FILEGATE_CACHE/garage-$GARAGE_VERSION/bin/garage}"
# Fixed dev credentials (Garage key ids are GK + 24 hex, secrets 64 hex).
S3_KEY_ID="GK0123456789abcdef01234567"
S3_SECRET="0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
S3_REGION="garage"

log() { printf '\033[1m[%s]\033[0m %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# A TCP port nobody listens on right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out waiting for $what"
    sleep 0.2
  done
}

ensure_apt_package() { # ensure_apt_package COMMAND [APT-GET OPTION...] PACKAGE...
  command -v "$1" >/dev/null 2>&1 && return 0
  shift
  apt_install "$@"
}

# filegate's video processor runs ffmpeg and ffprobe as child processes: Debian's ffmpeg
# package has both. Installed without the recommends of its libraries, which it does not
# need (on a minbase root that is still about 200 packages, some 470 MB).
ensure_ffmpeg() {
  ensure_apt_package ffmpeg --no-install-recommends ffmpeg
  ensure_apt_package ffprobe --no-install-recommends ffmpeg
  command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 \
    || die "ffmpeg and ffprobe are not on the PATH after installing Debian's ffmpeg"
}

apt_install() { # apt_install [APT-GET OPTION...] PACKAGE...
  log "installing $* from Debian's packages"
  command -v apt-get >/dev/null || die "apt-get not found; install $* by hand"
  local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

pg_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  command -v initdb >/dev/null && dirname "$(command -v initdb)" && return 0
  return 1
}

# Sets PG_URL (a server URL ending in /postgres) and PG_STARTED_DIR ("" when reused).
# Reuses $DATABASE_URL or 127.0.0.1:5432 when reachable; otherwise starts a private
# cluster in DIR on PORT from Debian's postgresql package, installing it if missing.
ensure_postgres() { # ensure_postgres DIR PORT
  local dir=$1 port=$2
  ensure_apt_package psql postgresql-client
  PG_STARTED_DIR=""
  if [ -n "${DATABASE_URL:-}" ] && psql "$DATABASE_URL" -Atqc 'select 1' >/dev/null 2>&1; then
    PG_URL="$DATABASE_URL"; log "using Postgres at \$DATABASE_URL"; return 0
  fi
  if psql "postgres://postgres@127.0.0.1:5432/postgres" -Atqc 'select 1' >/dev/null 2>&1; then
    PG_URL="postgres://postgres@127.0.0.1:5432/postgres"; log "using Postgres at 127.0.0.1:5432"; return 0
  fi
  PG_URL=$(start_private_postgres "$dir" "$port")
  PG_STARTED_DIR="$dir"
}

# A private cluster in DIR on 127.0.0.1:PORT (trust auth), from Debian's postgresql
# package, installed if missing; EXTRA server options (e.g. "-c ssl=on") are added.
# Prints the server's URL (ending in /postgres); sets nothing.
start_private_postgres() { # start_private_postgres DIR PORT [EXTRA]
  local dir=$1 port=$2 extra=${3:-}
  pg_bindir >/dev/null || apt_install postgresql
  local bin; bin=$(pg_bindir) || die "postgresql installed but initdb not found"
  local as=()
  if [ "$(id -u)" = 0 ]; then as=(runuser -u postgres --); fi
  if [ ! -s "$dir/PG_VERSION" ]; then
    log "initializing a private Postgres cluster in $dir"
    mkdir -p "$dir"
    # initdb refuses root: the cluster belongs to the postgres user, who must reach it.
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir" && chmod o+x "$(dirname "$dir")"
    "${as[@]}" "$bin/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 >/dev/null \
      || die "initdb failed in $dir"
  fi
  log "starting a private Postgres on 127.0.0.1:$port"
  "${as[@]}" "$bin/pg_ctl" -D "$dir" -l "$dir/postgres.log" -w -t 30 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off $extra" start >/dev/null \
    || die "Postgres did not start on port $port (log: $dir/postgres.log)"
  echo "postgres://postgres@127.0.0.1:$port/postgres"
}

stop_postgres() { # stop_postgres DIR
  local bin; bin=$(pg_bindir) || return 0
  local as=(); [ "$(id -u)" = 0 ] && as=(runuser -u postgres --)
  "${as[@]}" "$bin/pg_ctl" -D "$1" -m fast -w stop >/dev/null 2>&1 || true
}

# Copies a prebuilt binary NAME (e.g. garage-2.5.0) to DEST when a cache seed beside
# the clone (../shared/cache, or $FILEGATE_CACHE_SEED) holds it with the digest its
# SHA256SUMS lists. Returns non-zero when there is no such seed; the caller builds.
seed_binary() { # seed_binary NAME DEST
  local name=$1 dest=$2 seed="${FILEGATE_CACHE_SEED:-$ROOT/../shared/cache}"
  [ -f "$seed/$name" ] && [ -f "$seed/SHA256SUMS" ] || return 1
  local want got
  want=$(awk -v n="$name" '$2 == n { print $1 }' "$seed/SHA256SUMS")
  got=$(sha256sum "$seed/$name" | cut -d' ' -f1)
  [ -n "$want" ] && [ "$want" = "$got" ] || { log "ignoring $seed/$name: digest mismatch"; return 1; }
  mkdir -p "$(dirname "$dest")"
  cp "$seed/$name" "$dest.tmp" && chmod 755 "$dest.tmp" && mv "$dest.tmp" "$dest"
  log "seeded $dest from $seed"
}

# Installs CRATE VERSION's binary BIN into the cache once with `cargo install` (more
# cargo arguments after TIME, what the log says it takes), or copies the digest-checked
# prebuilt CRATE-VERSION from a cache seed when there is one. One install at a time.
ensure_cargo_binary() { # ensure_cargo_binary CRATE VERSION BIN TIME [CARGO_ARGS...]
  local crate=$1 version=$2 bin=$3 time=$4; shift 4
  [ -x "$bin" ] && return 0
  mkdir -p "$FILEGATE_CACHE"
  ensure_apt_package flock util-linux
  (
    flock 9
    [ -x "$bin" ] || seed_binary "$crate-$version" "$bin" || true
    if [ ! -x "$bin" ]; then
      log "installing $crate $version into $FILEGATE_CACHE (once; $time)"
      cargo install "$crate" --version "$version" --locked --quiet "$@" \
        --root "$FILEGATE_CACHE/$crate-$version" --target-dir "$FILEGATE_CACHE/build-$crate"
      rm -rf "$FILEGATE_CACHE/build-$crate"
    fi
  ) 9>"$FILEGATE_CACHE/$crate.lock"
  [ -x "$bin" ] || die "could not install $crate $version into $FILEGATE_CACHE"
}

# Garage: cargo install takes 7-13 minutes on 2 cores.
ensure_garage() { ensure_cargo_binary garage "$GARAGE_VERSION" "$GARAGE_BIN" "7 to 13 minutes on 2 cores"; }

# Starts a single-node Garage in DIR with the fixed credentials and BUCKET, serving S3
# on 127.0.0.1:S3_PORT. Sets GARAGE_CONFIG; writes DIR/garage.pid.
start_garage() { # start_garage DIR S3_PORT RPC_PORT ADMIN_PORT BUCKET
  local dir=$1 s3=$2 rpc=$3 admin=$4 bucket=$5
  mkdir -p "$dir/meta" "$dir/data"
  GARAGE_CONFIG="$dir/garage.toml"
  cat >"$GARAGE_CONFIG" <<TOML
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"
rpc_secret = "$(printf '%064d' 0)"

[s3_api]
s3_region = "$S3_REGION"
api_bind_addr = "127.0.0.1:$s3"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$admin"
TOML
  RUST_LOG=warn nohup "$GARAGE_BIN" -c "$GARAGE_CONFIG" server >>"$dir/garage.log" 2>&1 &
  echo $! >"$dir/garage.pid"
  wait_for 30 "Garage on port $rpc" "$GARAGE_BIN" -c "$GARAGE_CONFIG" status
  if [ ! -f "$dir/configured" ]; then
    local node; node=$("$GARAGE_BIN" -c "$GARAGE_CONFIG" node id -q 2>/dev/null | cut -d@ -f1)
    "$GARAGE_BIN" -c "$GARAGE_CONFIG" layout assign -z dc1 -c 1G "$node" >/dev/null
    "$GARAGE_BIN" -c "$GARAGE_CONFIG" layout apply --version 1 >/dev/null
    "$GARAGE_BIN" -c "$GARAGE_CONFIG" key import --yes -n filegate "$S3_KEY_ID" "$S3_SECRET" >/dev/null
    "$GARAGE_BIN" -c "$GARAGE_CONFIG" key allow --create-bucket filegate >/dev/null
    "$GARAGE_BIN" -c "$GARAGE_CONFIG" bucket create "$bucket" >/dev/null
    "$GARAGE_BIN" -c "$GARAGE_CONFIG" bucket allow --read --write --owner "$bucket" --key filegate >/dev/null
    touch "$dir/configured"
  fi
  wait_for 30 "Garage S3 on port $s3" port_open 127.0.0.1 "$s3"
}

stop_pidfile() { # stop_pidfile FILE: TERM, then KILL after 10 s
  local f=$1 pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# A venv with scripts/requirements-test.txt, cached outside the clone by content hash;
# also unpacks the compose-spec JSON schema (shipped inside the docker-compose wheel).
# Sets VENV and COMPOSE_SCHEMA.
ensure_venv() {
  local req="$ROOT/scripts/requirements-test.txt" hash
  hash=$(sha256sum "$req" | cut -c1-12)
  VENV="$FILEGATE_CACHE/venv-$hash"
  COMPOSE_SCHEMA="$FILEGATE_CACHE/compose-spec/compose/config/compose_spec.json"
  if [ ! -x "$VENV/bin/schemathesis" ]; then
    log "installing the Python test tools into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$req"
  fi
  if [ ! -f "$COMPOSE_SCHEMA" ]; then
    local tmp; tmp=$(mktemp -d)
    "$VENV/bin/pip" download -q --disable-pip-version-check --no-deps -d "$tmp" docker-compose==1.29.2
    mkdir -p "$FILEGATE_CACHE/compose-spec"
    python3 -m zipfile -e "$tmp"/docker_compose-*.whl "$tmp/x"
    mkdir -p "$(dirname "$COMPOSE_SCHEMA")"
    cp "$tmp/x/compose/config/compose_spec.json" "$COMPOSE_SCHEMA"
    rm -rf "$tmp"
  fi
}

# A venv with the requirements file $2 (one seed's SDK), cached outside the clone by
# content hash, checked by importing the module $3. Sets the variable named $1 to it.
ensure_sdk_venv() {
  local var=$1 req="$ROOT/scripts/$2" module=$3 hash dir
  hash=$(sha256sum "$req" | cut -c1-12)
  dir="$FILEGATE_CACHE/venv-${2%.txt}-$hash"
  if [ ! -x "$dir/bin/python" ] || ! "$dir/bin/python" -c "import $module" 2>/dev/null; then
    log "installing $(grep -v '^#' "$req" | xargs) into $dir"
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/pip" install -q --disable-pip-version-check -r "$req"
  fi
  printf -v "$var" '%s' "$dir"
}

# Aymara's SDK (scripts/requirements-aymara.txt). Sets AYMARA_VENV.
ensure_aymara_venv() { ensure_sdk_venv AYMARA_VENV requirements-aymara.txt aymara_ai; }

# AI21's SDK, the newest release and the newest 3.x (scripts/requirements-ai21*.txt).
# Sets AI21_VENV and AI21_V3_VENV.
ensure_ai21_venvs() {
  ensure_sdk_venv AI21_VENV requirements-ai21.txt ai21
  ensure_sdk_venv AI21_V3_VENV requirements-ai21-v3.txt ai21
}

# cargo-fuzz (coverage-guided libFuzzer targets; runs on the stable toolchain with
# `-s none`), installed once into the cache. Sets CARGO_FUZZ.
ensure_cargo_fuzz() {
  CARGO_FUZZ="$FILEGATE_CACHE/cargo-fuzz/bin/cargo-fuzz"
  if [ ! -x "$CARGO_FUZZ" ]; then
    log "installing cargo-fuzz into $FILEGATE_CACHE/cargo-fuzz (once)"
    cargo install cargo-fuzz --version 0.13.2 --locked --quiet --root "$FILEGATE_CACHE/cargo-fuzz"
  fi
}

# Debian's Chromium and playwright-core (pinned in tests/browser/package.json, installed
# once into the cache). Sets NODE_MODULES_DIR.
ensure_browser() {
  ensure_apt_package chromium chromium
  ensure_apt_package node nodejs npm
  local pkg="$ROOT/tests/browser/package.json" hash
  hash=$(sha256sum "$pkg" | cut -c1-12)
  local dir="$FILEGATE_CACHE/node-$hash"
  NODE_MODULES_DIR="$dir/node_modules"
  if [ ! -d "$NODE_MODULES_DIR/playwright-core" ]; then
    log "installing playwright-core into $dir"
    rm -rf "$dir" && mkdir -p "$dir"
    cp "$pkg" "$dir/package.json"
    (cd "$dir" && npm install --silent --no-audit --no-fund >/dev/null)
  fi
}
