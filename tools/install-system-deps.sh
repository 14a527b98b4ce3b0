#!/usr/bin/env bash
# Installs the Debian packages proofcheck's checks use, when they are missing.
# ClamAV (clamd), Tesseract with French data (OCR of screenshots), ffmpeg (video frames),
# libmagic (real file types), Chromium (HTML report tests), fonts for generated screenshots;
# with --tests also PostgreSQL (the verdict index tests start a private cluster), 7-Zip and bsdtar.
# Without root (and without sudo) it only lists what is missing: those checks then report "not run".
set -euo pipefail

need=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
[ -x /usr/sbin/clamd ] || need+=(clamav-daemon clamav)
have_cmd tesseract || need+=(tesseract-ocr)
ls /usr/share/tesseract-ocr/*/tessdata/fra.traineddata >/dev/null 2>&1 || need+=(tesseract-ocr-fra)
have_cmd ffmpeg || need+=(ffmpeg)
ldconfig -p 2>/dev/null | grep -q 'libmagic.so.1' || need+=(libmagic1)
have_cmd chromium || need+=(chromium)
have_cmd pdftoppm || need+=(poppler-utils)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
# More faces for the generated screenshots (fixtures/screens.py): Arial-like, Noto; optional, DejaVu suffices.
[ -f /usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf ] || need+=(fonts-liberation)
[ -f /usr/share/fonts/truetype/noto/NotoSans-Regular.ttf ] || need+=(fonts-noto-core)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
# --tests: what only the test suite needs (a private Postgres cluster for the verdict index tests).
if [ "${1:-}" = "--tests" ]; then
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
  # Real 7-Zip and bsdtar write the benign archives the archive readers are checked against.
  have_cmd 7zz || need+=(7zip)
  have_cmd bsdtar || need+=(libarchive-tools)
fi

if [ ${#need[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
echo "system packages missing: ${need[*]}"
if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif have_cmd sudo && sudo -n true 2>/dev/null; then
  SUDO="sudo -n"
else
  echo "not root and no sudo: install them by hand (apt-get install ${need[*]}); the checks that need them will report 'not run'" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "system packages installed: ${need[*]}"
