#!/usr/bin/env bash
# MLflow's database and its owner, beside Dagster's. The postgres image runs this once, when its
# volume is empty (docker-entrypoint-initdb.d); psql takes the server from the environment.
set -euo pipefail
: "${POSTGRES_USER:?}" "${MLFLOW_POSTGRES_USER:?}" "${MLFLOW_POSTGRES_PASSWORD:?}" "${MLFLOW_POSTGRES_DB:?}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-postgres}" \
    -v owner="$MLFLOW_POSTGRES_USER" -v password="$MLFLOW_POSTGRES_PASSWORD" \
    -v database="$MLFLOW_POSTGRES_DB" <<'SQL'
CREATE ROLE :"owner" LOGIN PASSWORD :'password';
CREATE DATABASE :"database" OWNER :"owner";
SQL
echo "create-databases: database ${MLFLOW_POSTGRES_DB} owned by ${MLFLOW_POSTGRES_USER}"
