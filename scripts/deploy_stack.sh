#!/usr/bin/env bash
# Create a CloudFormation stack, or update it if it exists, wait, and print its outputs.
# Usage: scripts/deploy_stack.sh STACK_NAME TEMPLATE_FILE [Key=Value ...]
# Parameters not given keep their previous values on an update, so scaling is e.g.
#   scripts/deploy_stack.sh mailape-web cloudformation/web_worker.yaml DesiredCapacity=2
set -euo pipefail

if [[ $# -lt 2 ]]; then
    sed -n '2,5s/^# \{0,1\}//p' "$0" >&2
    exit 2
fi
readonly STACK_NAME=$1 TEMPLATE_FILE=$2
shift 2

overrides=()
if [[ $# -gt 0 ]]; then
    overrides=(--parameter-overrides "$@")
fi

# The ${overrides[@]+...} form keeps the empty case working in macOS's bash 3.2 under set -u.
aws cloudformation deploy \
    --stack-name "${STACK_NAME}" \
    --template-file "${TEMPLATE_FILE}" \
    --capabilities CAPABILITY_IAM \
    --no-fail-on-empty-changeset \
    ${overrides[@]+"${overrides[@]}"}

"$(dirname "$0")/describe_stack.sh" "${STACK_NAME}"
