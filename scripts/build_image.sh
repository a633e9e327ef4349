#!/usr/bin/env bash
# Build the Mail Ape AMI from the committed tree (never from local, uncommitted files).
# Usage: scripts/build_image.sh [region]   (AWS credentials from the usual AWS CLI chain)
# Prints the new AMI id on its last line.
set -euo pipefail

readonly REGION=${1:-${AWS_DEFAULT_REGION:-us-west-2}}
repo_root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
readonly repo_root
commit=$(git -C "${repo_root}" rev-parse --short HEAD)
readonly commit

source_dir=$(mktemp -d)
trap 'rm -rf "${source_dir}"' EXIT
git -C "${repo_root}" archive --format=tar HEAD | tar -x -C "${source_dir}"

packer validate \
    -var "aws_region=${REGION}" -var "source_dir=${source_dir}" -var "source_commit=${commit}" \
    "${source_dir}/packer/web_worker.json"
packer build -machine-readable \
    -var "aws_region=${REGION}" -var "source_dir=${source_dir}" -var "source_commit=${commit}" \
    "${source_dir}/packer/web_worker.json" | tee "${source_dir}/packer.log" >&2

# Machine-readable artifact lines look like: time,builder,artifact,0,id,us-west-2:ami-0abc
awk -F, '$3 == "artifact" && $5 == "id" { split($6, parts, ":"); print parts[2] }' \
    "${source_dir}/packer.log" | tail -n 1
