#!/bin/sh
# One-shot: apply migrations, then create a demo organization, workspace and API key
# once (kept in /bootstrap/env for later runs), for the docker-compose stacks.
set -eu
filegate migrate
if [ -s /bootstrap/env ]; then
  echo "filegate: demo tenant exists (see the bootstrap volume's env file)"
  exit 0
fi
org=$(filegate admin create-org demo)
ws=$(filegate admin create-workspace --org "$org" --name demo)
key=$(filegate admin create-key --org "$org" --default-workspace "$ws")
printf 'FILEGATE_URL=%s\nFILEGATE_API_KEY=%s\nFILEGATE_WORKSPACE=%s\n' "${FILEGATE_URL:-http://localhost:8080}" "$key" "$ws" > /bootstrap/env
echo "filegate demo workspace: $ws"
echo "filegate demo API key:   $key"
