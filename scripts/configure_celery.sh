#!/usr/bin/env bash
# Run by Packer: boot-time settings, migrations, Celery worker and beat under systemd.
set -euo pipefail

readonly APP_ROOT=${APP_ROOT:-/mailape}
readonly UNITS=(mailape-environment.service mailape-migrate.service celery.service celery-beat.service)

for unit in "${UNITS[@]}"; do
    sudo install -m 0644 "${APP_ROOT}/ubuntu/${unit}" "/etc/systemd/system/${unit}"
done
sudo install -m 0644 "${APP_ROOT}/ubuntu/tmpfiles-mailape.conf" /etc/tmpfiles.d/mailape.conf
sudo install -m 0644 "${APP_ROOT}/ubuntu/logrotate-mailape" /etc/logrotate.d/mailape
sudo systemd-tmpfiles --create /etc/tmpfiles.d/mailape.conf
sudo systemctl daemon-reload
sudo systemctl enable "${UNITS[@]}"
