#!/usr/bin/env bash
# Store Mail Ape's settings in SSM Parameter Store, where instances read them at boot.
# Usage: scripts/put_parameters.sh SETTINGS_FILE [PARAMETER_PATH]
#   SETTINGS_FILE holds KEY=VALUE lines (names as in production settings, e.g.
#   DJANGO_SECRET_KEY=...); '#' lines and blank lines are skipped. Every value is
#   stored as a SecureString under PARAMETER_PATH (default /mailape/production). SSM holds
#   no empty value, so NAME= (an optional setting left unset) is skipped, not stored.
set -euo pipefail

readonly SETTINGS_FILE=${1:?Usage: $0 SETTINGS_FILE [PARAMETER_PATH]}
readonly PARAMETER_PATH=${2:-/mailape/production}

value_file=$(mktemp)
trap 'rm -f "${value_file}"' EXIT
chmod 600 "${value_file}"

while IFS= read -r line || [[ -n "${line}" ]]; do
    [[ -z "${line}" || "${line}" == \#* ]] && continue
    name=${line%%=*}
    if [[ ! "${name}" =~ ^[A-Z][A-Z0-9_]*$ || "${line}" != *=* ]]; then
        echo "Skipping a line that is not NAME=value: ${name}" >&2
        continue
    fi
    value=${line#*=}
    if [[ -z "${value}" ]]; then
        echo "Skipping ${name}: empty, so not stored (to drop a value stored before:" \
            "aws ssm delete-parameter --name ${PARAMETER_PATH%/}/${name})" >&2
        continue
    fi
    # From a file, so that secrets never appear in the process list.
    printf '%s' "${value}" >"${value_file}"
    aws ssm put-parameter --overwrite --type SecureString \
        --name "${PARAMETER_PATH%/}/${name}" --value "file://${value_file}" >/dev/null
    echo "Stored ${PARAMETER_PATH%/}/${name}"
done <"${SETTINGS_FILE}"
