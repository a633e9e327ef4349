#!/usr/bin/env bash
# Print a stack's status and its outputs as KEY<TAB>VALUE lines.
# Usage: scripts/describe_stack.sh STACK_NAME [OUTPUT_KEY]
#   With OUTPUT_KEY, print only that output's value (for use in other commands).
set -euo pipefail

readonly STACK_NAME=${1:?Usage: $0 STACK_NAME [OUTPUT_KEY]}
readonly OUTPUT_KEY=${2:-}

if [[ -n "${OUTPUT_KEY}" ]]; then
    aws cloudformation describe-stacks --stack-name "${STACK_NAME}" \
        --query "Stacks[0].Outputs[?OutputKey=='${OUTPUT_KEY}'].OutputValue" --output text
    exit 0
fi

aws cloudformation describe-stacks --stack-name "${STACK_NAME}" \
    --query 'Stacks[0].StackStatus' --output text
aws cloudformation describe-stacks --stack-name "${STACK_NAME}" \
    --query 'Stacks[0].Outputs[].[OutputKey,OutputValue]' --output text
