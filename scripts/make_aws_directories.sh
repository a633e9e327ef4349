#!/usr/bin/env bash
# Run by Packer as the image's login user: the places the later steps copy into.
set -euo pipefail

sudo mkdir -p \
    /mailape/ubuntu \
    /mailape/apache \
    /mailape/django \
    /mailape/scripts \
    /mailape/database \
    /etc/mailape \
    /var/log/mailape \
    /var/lib/mailape

sudo chown -R "$(id -un)" /mailape
