# shellcheck shell=bash
# A throwaway single-node Ceph RGW (S3) on loopback for the test script, so filegate
# is also tested against a second S3 implementation besides Garage. Sourced after
# scripts/lib/stack.sh (log, die, free_port, apt_install, stop_pidfile).
#
# The cluster is one mon, one memstore OSD and one radosgw; no mgr (nothing here
# needs one) and no cephx (loopback only, and no keyrings to manage). Everything it
# writes (conf, mon store, OSD dir, logs, sockets, pid files) lives under the DIR given
# to start_ceph, so several clusters can coexist and nothing lands in /etc/ceph or
# /var/lib/ceph. Objects live in the OSD's memory: a stopped cluster is gone, and
# start_ceph always builds a fresh one.
#
# Clients must use path-style addressing (http://127.0.0.1:PORT/BUCKET/KEY): RGW only
# maps Host headers to buckets for names in rgw_dns_name, which stays unset.

# Fixed test credentials, shaped like AWS ones (20-char key id, 40-char secret) so
# that clients which check the format accept them.
CEPH_S3_KEY_ID="FGCEPHTESTKEY0000001"
CEPH_S3_SECRET="filegateCephTestSecret000000000000000000"
# The region clients sign with. RGW verifies a SigV4 signature with the region named
# in the request's own credential scope, so "default" (its zonegroup) or any other
# name verifies too; us-east-1 is what AWS SDKs and tools assume.
CEPH_S3_REGION="us-east-1"

# Installs Debian's Ceph (16.2 on bookworm, ~72 MB, about 40 s) unless it is there.
# Recommends would add the mgr/dashboard Python stack, which we never run.
ensure_ceph() {
  local cmd missing=""
  for cmd in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool; do
    command -v "$cmd" >/dev/null 2>&1 || missing=$cmd
  done
  if [ -n "$missing" ]; then
    apt_install --no-install-recommends ceph-mon ceph-osd radosgw ceph-common
    command -v radosgw >/dev/null 2>&1 || die "installed Ceph but radosgw is still not on PATH"
  fi
  ensure_apt_package curl curl
}

# The ceph CLI against the cluster in DIR. Without the timeouts a dead mon makes it
# retry forever.
_ceph() { # _ceph DIR ARGS...
  local dir=$1; shift
  timeout 30 ceph -c "$dir/ceph.conf" --connect-timeout 10 "$@"
}

_ceph_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Dies with MESSAGE after showing the tails of the LOGs (where the reasons are) and
# stopping whatever DIR already runs, so a failed start leaves no daemon behind.
_ceph_fail() { # _ceph_fail DIR MESSAGE LOG...
  local dir=$1 msg=$2 f; shift 2
  for f in "$@"; do
    [ -s "$f" ] || continue
    log "last lines of $f:"
    tail -n 25 "$f" >&2 || true
    # An XML error body has no final newline; keep the next log line apart.
    [ -z "$(tail -c 1 "$f")" ] || echo >&2
  done
  stop_ceph "$dir"
  die "$msg"
}

# Waits up to SECONDS for COMMAND to succeed. Every daemon started so far must stay
# alive meanwhile: one that exits fails the start at once with its own log.
_ceph_wait() { # _ceph_wait SECONDS DESCRIPTION DIR COMMAND...
  local deadline=$((SECONDS + $1)) what=$2 dir=$3 name logs=(); shift 3
  until "$@" >/dev/null 2>&1; do
    for name in mon osd rgw; do
      [ -f "$dir/$name.pid" ] || continue
      logs+=("$dir/log/$name.log")
      _ceph_alive "$dir/$name.pid" ||
        _ceph_fail "$dir" "Ceph $name exited while waiting for $what" \
          "$dir/log/$name.out" "$dir/log/$name.log"
    done
    ((SECONDS < deadline)) || _ceph_fail "$dir" "timed out waiting for $what" "${logs[@]}"
    logs=()
    sleep 0.2
  done
}

# Runs a daemon with -f as a background job, so $! is the daemon itself (it neither
# forks nor daemonizes) and DIR/NAME.pid is what stop_ceph kills.
_ceph_spawn() { # _ceph_spawn DIR NAME COMMAND...
  local dir=$1 name=$2; shift 2
  nohup "$@" -c "$dir/ceph.conf" -f </dev/null >>"$dir/log/$name.out" 2>&1 &
  echo $! >"$dir/$name.pid"
}

# RGW answers an anonymous GET / (an empty bucket list) once its frontend is up and
# the zone is loaded, which needs the OSD to serve the pools.
_ceph_s3_up() { curl -sf -o /dev/null --max-time 5 "http://127.0.0.1:$1/"; }

# Creates BUCKET for the test user; RGW answers 200 when that user owns it already.
# radosgw-admin cannot create buckets, a SigV4-signed PUT can (curl signs it). curl
# 7.88 leaves out x-amz-content-sha256, without which RGW computes another signature;
# sending the header (it is then signed too) makes both sides agree.
_ceph_bucket() { # _ceph_bucket DIR S3_PORT BUCKET
  local dir=$1 s3=$2 bucket=$3 code
  code=$(curl -s --max-time 30 -o "$dir/log/create-bucket.xml" -w '%{http_code}' \
    --aws-sigv4 "aws:amz:$CEPH_S3_REGION:s3" --user "$CEPH_S3_KEY_ID:$CEPH_S3_SECRET" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
    -X PUT "http://127.0.0.1:$s3/$bucket") || true
  [ "$code" = 200 ] ||
    _ceph_fail "$dir" "creating bucket $bucket on Ceph RGW failed (HTTP $code)" \
      "$dir/log/create-bucket.xml" "$dir/log/rgw.log"
}

# Starts mon, OSD and radosgw under DIR, serving S3 on 127.0.0.1:S3_PORT with the
# user CEPH_S3_KEY_ID/CEPH_S3_SECRET and BUCKET. Writes DIR/{mon,osd,rgw}.pid.
# When DIR's radosgw already serves S3_PORT, only makes sure BUCKET exists.
start_ceph() { # start_ceph DIR S3_PORT BUCKET
  local dir=$1 s3=$2 bucket=$3
  if [ -z "$dir" ] || [ -z "$s3" ] || [ -z "$bucket" ]; then
    die "usage: start_ceph DIR S3_PORT BUCKET"
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if _ceph_alive "$dir/rgw.pid" && _ceph_s3_up "$s3"; then
    _ceph_bucket "$dir" "$s3" "$bucket"
    log "Ceph RGW already running on 127.0.0.1:$s3 ($dir)"
    return 0
  fi
  # Leftovers of an earlier run would hold ports or confuse the fresh mkfs.
  stop_ceph "$dir"
  rm -rf "$dir/ceph.conf" "$dir/monmap" "$dir/mon" "$dir/osd" "$dir/run" "$dir/log" "$dir/crash"
  mkdir -p "$dir/mon" "$dir/osd" "$dir/run" "$dir/log"

  local conf="$dir/ceph.conf" mon_port fsid osd_uuid osd_id
  mon_port=$(free_port)
  fsid=$(cat /proc/sys/kernel/random/uuid)
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  log "starting Ceph RGW on 127.0.0.1:$s3 (mon on 127.0.0.1:$mon_port) in $dir"

  # $name, $cluster and $id are Ceph's metavariables, expanded by each daemon.
  # shellcheck disable=SC2016
  local name='$name' cluster_id='$cluster-$id'
  cat >"$conf" <<CONF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$mon_port]
public addr = 127.0.0.1
# msgr v2 only: one port per daemon, nothing on the well-known 6789.
ms bind msgr1 = false
ms bind msgr2 = true
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
mon warn on insecure global id reclaim = false
mon warn on insecure global id reclaim allowed = false
# One OSD holds the only copy; otherwise PGs stay undersized and I/O blocks.
mon allow pool size one = true
mon warn on pool no redundancy = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = 1073741824
# Every mon change (OSD boot, each pool) first waits out this interval, 1 s by
# default, to batch updates from peers a single mon does not have.
paxos propose interval = 0.01
paxos min wait = 0.001
# A nearly full disk under DIR must not keep the mon from starting.
mon data avail crit = 0
mon data avail warn = 0
# Every path under DIR.
mon data = $dir/mon/$cluster_id
osd data = $dir/osd/$cluster_id
osd journal = $dir/osd/$cluster_id/journal
run dir = $dir/run
crash dir = $dir/crash
keyring = $dir/keyring
pid file = $dir/run/$name.pid
admin socket = $dir/run/$name.asok
log file = $dir/log/$name.log
log to stderr = false

[mon]
log file = $dir/log/mon.log
# The cluster and audit logs go to /var/log/ceph otherwise.
mon cluster log file = $dir/log/cluster.log

[osd]
log file = $dir/log/osd.log

# CLI tools need no admin socket, and two at once would fight over one path.
[client]
admin socket =

[client.rgw.filegate]
admin socket = $dir/run/$name.asok
log file = $dir/log/rgw.log
rgw frontends = beast endpoint=127.0.0.1:$s3
rgw data = $dir/rgw
# With auth none the mon offers secure mode first and radosgw loops on auth.
ms mon client mode = crc
rgw thread pool size = 64
# Bucket notifications whose push endpoint carries filegate's events secret: RGW keeps
# credentials in an endpoint only over HTTPS, or when it trusts X-Forwarded-Proto (as
# behind a TLS proxy); the notification test sends that header with CreateTopic.
rgw trust forwarded https = true
# Lifecycle workers sleep in 5 s steps and radosgw joins them on TERM, which made
# every stop take 2-5 s; filegate sets no bucket lifecycle rules.
rgw enable lc threads = false
CONF

  monmaptool --create --clobber --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" \
    "$dir/monmap" >>"$dir/log/mkfs.log" 2>&1 ||
    _ceph_fail "$dir" "monmaptool failed" "$dir/log/mkfs.log"
  ceph-mon -c "$conf" -i a --mkfs --monmap "$dir/monmap" >>"$dir/log/mkfs.log" 2>&1 ||
    _ceph_fail "$dir" "ceph-mon --mkfs failed" "$dir/log/mkfs.log"
  _ceph_spawn "$dir" mon ceph-mon -i a
  _ceph_wait 60 "the Ceph mon on port $mon_port" "$dir" _ceph "$dir" mon stat

  osd_id=$(_ceph "$dir" osd new "$osd_uuid" 2>>"$dir/log/mkfs.log") ||
    _ceph_fail "$dir" "ceph osd new failed" "$dir/log/mkfs.log"
  # MemStore's mkfs writes its fsid file there but does not create the directory.
  mkdir -p "$dir/osd/ceph-$osd_id"
  ceph-osd -c "$conf" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" >>"$dir/log/mkfs.log" 2>&1 ||
    _ceph_fail "$dir" "ceph-osd --mkfs failed" "$dir/log/mkfs.log"
  _ceph_spawn "$dir" osd ceph-osd -i "$osd_id"

  # RGW would create its pools on first use, each costing a mon round and PG
  # peering while a request waits; made up front, they peer while radosgw starts.
  # One CLI process reading commands from stdin saves a Python start per command, but
  # it exits 0 even when a command fails, hence the check of its output.
  local pools=(.rgw.root default.rgw.control default.rgw.meta default.rgw.log
    default.rgw.buckets.index default.rgw.buckets.data default.rgw.buckets.non-ec) pool
  {
    for pool in "${pools[@]}"; do
      echo "osd pool create $pool"
      echo "osd pool application enable $pool rgw"
    done
    echo "osd pool ls"
  } | _ceph "$dir" >"$dir/log/pools.log" 2>&1 ||
    _ceph_fail "$dir" "creating the RGW pools failed" "$dir/log/pools.log"
  for pool in "${pools[@]}"; do
    if grep -q '^Error' "$dir/log/pools.log" || ! grep -qxF "$pool" "$dir/log/pools.log"; then
      _ceph_fail "$dir" "creating the RGW pool $pool failed" "$dir/log/pools.log"
    fi
  done

  _ceph_spawn "$dir" rgw radosgw -n client.rgw.filegate
  _ceph_wait 60 "Ceph RGW on port $s3" "$dir" _ceph_s3_up "$s3"

  radosgw-admin -c "$conf" user create --uid=filegate --display-name=filegate \
    --access-key="$CEPH_S3_KEY_ID" --secret="$CEPH_S3_SECRET" >/dev/null 2>>"$dir/log/admin.log" ||
    _ceph_fail "$dir" "radosgw-admin user create failed" "$dir/log/admin.log"
  _ceph_bucket "$dir" "$s3" "$bucket"
  log "Ceph RGW ready on 127.0.0.1:$s3 with bucket $bucket"
}

# Stops radosgw, then the OSD, then the mon (clients before servers, so none waits on
# a vanished peer): TERM, then KILL after 10 s. Safe to repeat or after a failed start.
stop_ceph() { # stop_ceph DIR
  local name
  for name in rgw osd mon; do stop_pidfile "$1/$name.pid"; done
}
