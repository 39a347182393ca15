#!/bin/sh
# One-shot: lay out the single Garage node, import the fixed credentials, create the
# bucket and allow the key on it, through Garage's admin API (v2). Idempotent.
set -eu
# curl and jq come with the image (deploy/images/tools): nothing is installed at run time.
api=http://garage:3903
auth="Authorization: Bearer $GARAGE_ADMIN_TOKEN"
call() { curl -fsS -H "$auth" -H 'Content-Type: application/json' "$@"; }
until call "$api/v2/GetClusterHealth" >/dev/null 2>&1; do sleep 1; done
node=$(call "$api/v2/GetClusterStatus" | jq -r '.nodes[0].id')
if [ "$(call "$api/v2/GetClusterLayout" | jq '.roles | length')" = 0 ]; then
  call -X POST "$api/v2/UpdateClusterLayout" \
    -d "{\"roles\":[{\"id\":\"$node\",\"zone\":\"dc1\",\"capacity\":1000000000,\"tags\":[]}]}" >/dev/null
  call -X POST "$api/v2/ApplyClusterLayout" -d '{"version":1}' >/dev/null
fi
call -X POST "$api/v2/ImportKey" \
  -d "{\"name\":\"filegate\",\"accessKeyId\":\"$S3_KEY_ID\",\"secretAccessKey\":\"$S3_SECRET\"}" >/dev/null 2>&1 || true
bucket=$(call "$api/v2/GetBucketInfo?globalAlias=filegate" 2>/dev/null | jq -r '.id // empty' || true)
if [ -z "$bucket" ]; then
  bucket=$(call -X POST "$api/v2/CreateBucket" -d '{"globalAlias":"filegate"}' | jq -r '.id')
fi
call -X POST "$api/v2/AllowBucketKey" \
  -d "{\"bucketId\":\"$bucket\",\"accessKeyId\":\"$S3_KEY_ID\",\"permissions\":{\"read\":true,\"write\":true,\"owner\":true}}" >/dev/null
echo "garage: bucket filegate ready"
