#!/usr/bin/env bash
# The platform's roles and databases, least privilege first. The postgres image runs this once, as
# the cluster's superuser, when its volume is empty (docker-entrypoint-initdb.d); psql takes the
# server from the environment. No platform process logs in as the superuser afterwards:
#   DAGSTER_POSTGRES_USER         owns Dagster's database, nothing else (runs, webserver, daemon)
#   DAGSTER_READER_POSTGRES_USER  reads Dagster's database (the metrics exporter)
#   MLFLOW_POSTGRES_USER          owns MLflow's database, nothing else (the MLflow server)
# None of them is a superuser or may create roles or databases, and no role may connect to a
# database that is not its own. Passwords come from the environment and are never printed.
set -euo pipefail
: "${POSTGRES_USER:?}" \
    "${DAGSTER_POSTGRES_USER:?}" "${DAGSTER_POSTGRES_PASSWORD:?}" "${DAGSTER_POSTGRES_DB:?}" \
    "${DAGSTER_READER_POSTGRES_USER:?}" "${DAGSTER_READER_POSTGRES_PASSWORD:?}" \
    "${MLFLOW_POSTGRES_USER:?}" "${MLFLOW_POSTGRES_PASSWORD:?}" "${MLFLOW_POSTGRES_DB:?}"

as_superuser() {
    psql -v ON_ERROR_STOP=1 --quiet --no-psqlrc --username "$POSTGRES_USER" "$@"
}

# Each database belongs to its role; PUBLIC loses the right to connect to it (and to create in it).
as_superuser --dbname "${POSTGRES_DB:-postgres}" \
    -v dagster="$DAGSTER_POSTGRES_USER" -v dagster_password="$DAGSTER_POSTGRES_PASSWORD" \
    -v dagster_db="$DAGSTER_POSTGRES_DB" \
    -v reader="$DAGSTER_READER_POSTGRES_USER" -v reader_password="$DAGSTER_READER_POSTGRES_PASSWORD" \
    -v mlflow="$MLFLOW_POSTGRES_USER" -v mlflow_password="$MLFLOW_POSTGRES_PASSWORD" \
    -v mlflow_db="$MLFLOW_POSTGRES_DB" <<'SQL'
CREATE ROLE :"dagster" LOGIN PASSWORD :'dagster_password'
    NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
CREATE ROLE :"reader" LOGIN PASSWORD :'reader_password'
    NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
CREATE ROLE :"mlflow" LOGIN PASSWORD :'mlflow_password'
    NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
CREATE DATABASE :"dagster_db" OWNER :"dagster";
CREATE DATABASE :"mlflow_db" OWNER :"mlflow";
REVOKE ALL ON DATABASE :"dagster_db" FROM PUBLIC;
REVOKE ALL ON DATABASE :"mlflow_db" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"dagster_db" TO :"reader";
SQL

# Inside Dagster's database: the tables Dagster creates later (as its owner) are readable by the
# reader, and nothing else is granted to it.
as_superuser --dbname "$DAGSTER_POSTGRES_DB" \
    -v dagster="$DAGSTER_POSTGRES_USER" -v reader="$DAGSTER_READER_POSTGRES_USER" <<'SQL'
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"reader";
GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"reader";
ALTER DEFAULT PRIVILEGES FOR ROLE :"dagster" IN SCHEMA public GRANT SELECT ON TABLES TO :"reader";
ALTER DEFAULT PRIVILEGES FOR ROLE :"dagster" IN SCHEMA public
    GRANT SELECT ON SEQUENCES TO :"reader";
SQL
echo "create-databases: ${DAGSTER_POSTGRES_DB} owned by ${DAGSTER_POSTGRES_USER}" \
    "(read by ${DAGSTER_READER_POSTGRES_USER}), ${MLFLOW_POSTGRES_DB} owned by ${MLFLOW_POSTGRES_USER}"
