#!/bin/sh
# One-shot job (temporalio/admin-tools): creates Temporal's two PostgreSQL databases and brings
# their schemas to the version of the admin-tools image, as Temporal's own compose files do in place
# of the retired auto-setup image. Idempotent: `create` tolerates an existing database and
# `update-schema` applies only the versions not yet applied, so it also upgrades the schema when
# the image tags move to a newer server.
set -eu
: "${POSTGRES_SEEDS:?POSTGRES_SEEDS is required}"
: "${POSTGRES_USER:?POSTGRES_USER is required}"
: "${SQL_PASSWORD:?SQL_PASSWORD is required}"
port="${DB_PORT:-5432}"
schema=/etc/temporal/schema/postgresql/v12

echo "temporal-schema: waiting for PostgreSQL at ${POSTGRES_SEEDS}:${port}"
until nc -z -w 5 "$POSTGRES_SEEDS" "$port"; do sleep 1; done

sql() {
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -u "$POSTGRES_USER" -p "$port" "$@"
}
for db in temporal temporal_visibility; do
  sql --db "$db" create || echo "temporal-schema: database $db already exists"
done
# setup-schema -v 0.0 only creates the version table when it is missing; update-schema does the rest.
sql --db temporal setup-schema -v 0.0
sql --db temporal update-schema -d "$schema/temporal/versioned"
sql --db temporal_visibility setup-schema -v 0.0
sql --db temporal_visibility update-schema -d "$schema/visibility/versioned"
echo "temporal-schema: done"
