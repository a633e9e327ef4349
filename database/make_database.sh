#!/usr/bin/env bash
# Create Mail Ape's database role and database on the RDS server (or any PostgreSQL 15+).
#
# Connects with libpq's variables as the RDS master user:
#   PGHOST, PGPORT (5432), PGUSER (the master user), PGPASSWORD (the master password)
# and creates what production settings read:
#   DJANGO_DB_NAME (mailape), DJANGO_DB_USER (mailape), DJANGO_DB_PASSWORD (required)
# Safe to run again: an existing role gets the given password, an existing database is kept.
set -euo pipefail

: "${PGHOST:?Set PGHOST to the database server (the infrastructure stack output DatabaseDNS)}"
: "${PGUSER:?Set PGUSER to the master user}"
: "${DJANGO_DB_PASSWORD:?Set DJANGO_DB_PASSWORD to the password Mail Ape will use}"
readonly DJANGO_DB_NAME=${DJANGO_DB_NAME:-mailape}
readonly DJANGO_DB_USER=${DJANGO_DB_USER:-mailape}
export PGPORT=${PGPORT:-5432}
export PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-10}

# Values travel as psql variables and are quoted by format(%I/%L) on the server, so
# no name or password can break out of its SQL literal.
psql --no-psqlrc --quiet --dbname postgres \
    --set ON_ERROR_STOP=1 \
    --set app_database="${DJANGO_DB_NAME}" \
    --set app_user="${DJANGO_DB_USER}" \
    --set app_password="${DJANGO_DB_PASSWORD}" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'app_user')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_user') \gexec
-- No NOSUPERUSER: naming that attribute at all takes a superuser, which RDS's master is
-- not; a role it can create or alter is never a superuser anyway.
SELECT format('ALTER ROLE %I WITH LOGIN NOCREATEDB NOCREATEROLE PASSWORD %L',
              :'app_user', :'app_password') \gexec

-- CREATE DATABASE ... OWNER needs the master to be a member of the owner role; on
-- RDS the master is not a superuser, and since PostgreSQL 16 creating a role does
-- not make its creator a member.
SELECT format('GRANT %I TO CURRENT_USER', :'app_user')
WHERE NOT pg_has_role(current_user, :'app_user', 'MEMBER') \gexec

SELECT format('CREATE DATABASE %I OWNER %I ENCODING ''UTF8'' TEMPLATE template0',
              :'app_database', :'app_user')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'app_database') \gexec
SELECT format('ALTER DATABASE %I OWNER TO %I', :'app_database', :'app_user') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'app_database') \gexec

\connect :"app_database"
-- Since PostgreSQL 15 only the schema's owner (not PUBLIC) may create in "public":
-- Mail Ape owns it, so its migrations can create tables there.
SELECT format('ALTER SCHEMA public OWNER TO %I', :'app_user') \gexec
SQL

echo "Database ${DJANGO_DB_NAME} is ready for role ${DJANGO_DB_USER} on ${PGHOST}:${PGPORT}."
