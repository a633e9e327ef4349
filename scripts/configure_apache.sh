#!/usr/bin/env bash
# Run by Packer: Mail Ape as Apache's only site, with its settings from /etc/mailape.
set -euo pipefail

readonly APP_ROOT=${APP_ROOT:-/mailape}

sudo a2enmod -q wsgi
sudo a2dissite -q 000-default
sudo install -m 0644 "${APP_ROOT}/apache/mailape.apache.conf" \
    /etc/apache2/sites-available/mailape.conf
sudo a2ensite -q mailape
sudo install -d -m 0755 /etc/systemd/system/apache2.service.d
sudo install -m 0644 "${APP_ROOT}/ubuntu/apache2-mailape.conf" \
    /etc/systemd/system/apache2.service.d/mailape.conf
sudo apache2ctl configtest
sudo systemctl daemon-reload
sudo systemctl enable apache2
