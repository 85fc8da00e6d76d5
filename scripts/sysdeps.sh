#!/usr/bin/env bash
# Installs the Debian packages the test suite needs when they are missing (Xvfb for the OpenGL
# views, libxcb-cursor0 for Qt's xcb platform). Does nothing when they are present.
set -euo pipefail
missing=()
command -v xvfb-run >/dev/null 2>&1 || missing+=(xvfb xauth)
ldconfig -p 2>/dev/null | grep -q libxcb-cursor.so.0 || missing+=(libxcb-cursor0)
ldconfig -p 2>/dev/null | grep -q 'libEGL.so.1' || missing+=(libegl1)
ldconfig -p 2>/dev/null | grep -q 'libGL.so.1' || missing+=(libgl1)
ldconfig -p 2>/dev/null | grep -q 'libxkbcommon-x11.so.0' || missing+=(libxkbcommon-x11-0)
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "sysdeps: missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
  exit 0
fi
echo "sysdeps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
