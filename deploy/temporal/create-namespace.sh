#!/bin/sh
# One-shot job (temporalio/admin-tools): waits until the Temporal cluster answers its health check,
# then creates catalog-sync's namespace when it does not exist yet. Idempotent.
set -eu
address="${TEMPORAL_ADDRESS:-temporal:7233}"
namespace="${TEMPORAL_NAMESPACE:-default}"
retention="${TEMPORAL_NAMESPACE_RETENTION:-72h}"

attempt=1
until temporal operator cluster health --address "$address" >/dev/null 2>&1; do
  if [ "$attempt" -ge 60 ]; then
    echo "temporal-namespace: $address did not become healthy" >&2
    exit 1
  fi
  attempt=$((attempt + 1))
  sleep 2
done
if temporal operator namespace describe --address "$address" -n "$namespace" >/dev/null 2>&1; then
  echo "temporal-namespace: $namespace exists"
else
  temporal operator namespace create --address "$address" -n "$namespace" --retention "$retention"
  echo "temporal-namespace: created $namespace (retention $retention)"
fi
