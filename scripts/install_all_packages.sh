#!/usr/bin/env bash
# Run by Packer: Ubuntu packages, the app's virtualenv, its static files and translations.
set -euo pipefail

readonly APP_ROOT=${APP_ROOT:-/mailape}
export DEBIAN_FRONTEND=noninteractive

mapfile -t packages < <(grep -E '^[a-z0-9]' "${APP_ROOT}/ubuntu/packages.txt")
sudo apt-get update -q
sudo -E apt-get install -y -q --no-install-recommends "${packages[@]}"

# Ubuntu's own python3, the one libapache2-mod-wsgi-py3 is built against.
/usr/bin/python3 -m venv "${APP_ROOT}/virtualenv"
"${APP_ROOT}/virtualenv/bin/python" -m pip install --quiet --upgrade pip
"${APP_ROOT}/virtualenv/bin/python" -m pip install --quiet \
    -r "${APP_ROOT}/requirements.production.txt"

find "${APP_ROOT}/django" -name '__pycache__' -prune -exec rm -rf {} +
rm -rf "${APP_ROOT}/django/var" "${APP_ROOT}/django/staticfiles"
# Static files do not depend on secrets, so the laptop settings can collect them.
(cd "${APP_ROOT}/django" &&
    DJANGO_SETTINGS_MODULE=config.development_settings \
        "${APP_ROOT}/virtualenv/bin/python" manage.py collectstatic --noinput --verbosity 0)
# The translations' .mo files are built here, from the committed .po catalogues.
(cd "${APP_ROOT}/django" &&
    DJANGO_SETTINGS_MODULE=config.development_settings \
        "${APP_ROOT}/virtualenv/bin/python" manage.py compilemessages --verbosity 0)

sudo chown -R root:root "${APP_ROOT}"
sudo chown www-data:www-data /var/log/mailape /var/lib/mailape
sudo chown root:www-data /etc/mailape
sudo chmod 0750 /etc/mailape /var/log/mailape /var/lib/mailape
