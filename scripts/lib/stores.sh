# shellcheck shell=bash
# The S3 stores filegate runs and is tested on, behind one interface. Sourced after
# scripts/lib/stack.sh (Garage) and scripts/lib/ceph.sh (Ceph RGW).
#
#   ensure_store NAME                 install it into the cache once
#   start_store NAME DIR BUCKET [PORT] start it on 127.0.0.1 with BUCKET; sets
#                                     STORE_ENDPOINT, STORE_REGION, STORE_KEY_ID,
#                                     STORE_SECRET
#   stop_store NAME DIR               stop what start_store started in DIR
#
# Stores:
#   garage  Garage 2.5.0 (cargo, 7-13 min; or the cache seed): enforces every signed
#           header, keeps checksums, honours copy preconditions and CORS
#   ceph    Ceph RGW 16.2 from Debian (apt, under a minute): enforces signed type and
#           length, ignores signed checksums and copy preconditions; objects in memory
#   s3s-fs  s3s-fs 0.14.1 (cargo, about 2 min; or the cache seed): enforces every
#           signed header; no bucket CORS
#   s3rver  s3rver 3.7.1 (npm, seconds): enforces nothing; only to prove filegate
#           refuses such a store

STORES_MATRIX="garage ceph s3s-fs"

S3S_FS_VERSION="0.14.1"
S3S_FS_BIN="${S3S_FS_BIN:-$FILEGATE_CACHE/s3s-fs-$S3S_FS_VERSION/bin/s3s-fs}"
S3RVER_VERSION="3.7.1"
S3RVER_DIR="$FILEGATE_CACHE/s3rver-$S3RVER_VERSION"
# s3rver accepts only its own fixed credentials.
S3RVER_KEY_ID="S3RVER"
S3RVER_SECRET="S3RVER"

# s3s-fs: cargo install takes about 2 minutes.
ensure_s3s_fs() {
  ensure_cargo_binary s3s-fs "$S3S_FS_VERSION" "$S3S_FS_BIN" "about 2 minutes" --features binary
}

# Installs s3rver from the npm registry into the cache once (with the machine's Node.js).
ensure_s3rver() {
  [ -x "$S3RVER_DIR/node_modules/.bin/s3rver" ] && return 0
  command -v npm >/dev/null 2>&1 || apt_install nodejs npm
  mkdir -p "$S3RVER_DIR"
  log "installing s3rver $S3RVER_VERSION from npm into $S3RVER_DIR (once)"
  (cd "$S3RVER_DIR" && npm install --no-audit --no-fund --silent "s3rver@$S3RVER_VERSION" >/dev/null) \
    || die "npm could not install s3rver $S3RVER_VERSION"
}

ensure_store() { # ensure_store NAME
  case "$1" in
    garage) ensure_garage ;;
    ceph) ensure_ceph ;;
    s3s-fs) ensure_s3s_fs ;;
    s3rver) ensure_s3rver ;;
    *) die "unknown store '$1' (garage, ceph, s3s-fs or s3rver)" ;;
  esac
}

# Sets STORE_REGION, STORE_KEY_ID and STORE_SECRET to what clients of NAME sign with.
store_credentials() { # store_credentials NAME
  case "$1" in
    garage | s3s-fs) STORE_REGION=$S3_REGION STORE_KEY_ID=$S3_KEY_ID STORE_SECRET=$S3_SECRET ;;
    ceph) STORE_REGION=$CEPH_S3_REGION STORE_KEY_ID=$CEPH_S3_KEY_ID STORE_SECRET=$CEPH_S3_SECRET ;;
    s3rver) STORE_REGION=us-east-1 STORE_KEY_ID=$S3RVER_KEY_ID STORE_SECRET=$S3RVER_SECRET ;;
    *) die "unknown store '$1' (garage, ceph, s3s-fs or s3rver)" ;;
  esac
}

start_store() { # start_store NAME DIR BUCKET [PORT]
  local name=$1 dir=$2 bucket=$3 port=${4:-$(free_port)}
  store_credentials "$name"
  mkdir -p "$dir"
  STORE_ENDPOINT="http://127.0.0.1:$port"
  case "$name" in
    garage) start_garage "$dir" "$port" "$(free_port)" "$(free_port)" "$bucket" ;;
    ceph) start_ceph "$dir" "$port" "$bucket" ;;
    s3s-fs)
      # A bucket is a folder of the root; the data stays in DIR across restarts.
      mkdir -p "$dir/data/$bucket"
      nohup "$S3S_FS_BIN" --host 127.0.0.1 --port "$port" --access-key "$S3_KEY_ID" \
        --secret-key "$S3_SECRET" "$dir/data" >>"$dir/s3s-fs.log" 2>&1 &
      echo $! >"$dir/store.pid"
      wait_for 20 "s3s-fs on port $port" port_open 127.0.0.1 "$port"
      ;;
    s3rver)
      nohup "$S3RVER_DIR/node_modules/.bin/s3rver" -d "$dir/data" -a 127.0.0.1 -p "$port" -s \
        --configure-bucket "$bucket" >>"$dir/s3rver.log" 2>&1 &
      echo $! >"$dir/store.pid"
      wait_for 20 "s3rver on port $port" port_open 127.0.0.1 "$port"
      ;;
  esac
}

stop_store() { # stop_store NAME DIR
  case "$1" in
    garage) stop_pidfile "$2/garage.pid" ;;
    ceph) stop_ceph "$2" ;;
    *) stop_pidfile "$2/store.pid" ;;
  esac
}
