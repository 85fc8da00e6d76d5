#!/usr/bin/env bash
# Installs the Debian packages the test suite needs when they are missing (Xvfb for the OpenGL
# views, libxcb-cursor0 for Qt's xcb platform, the desktop-entry and AppStream validators, librsvg's
# rsvg-convert that renders the exported SVGs in tests/test_figure_exports.py). Does
# nothing when they are present. With --package also what `make package` uses (binutils for
# PyInstaller; openbox, xdotool and imagemagick for packaging/check_bundle.sh).
set -euo pipefail
missing=()
command -v xvfb-run >/dev/null 2>&1 || missing+=(xvfb xauth)
ldconfig -p 2>/dev/null | grep -q libxcb-cursor.so.0 || missing+=(libxcb-cursor0)
ldconfig -p 2>/dev/null | grep -q 'libEGL.so.1' || missing+=(libegl1)
ldconfig -p 2>/dev/null | grep -q 'libGL.so.1' || missing+=(libgl1)
ldconfig -p 2>/dev/null | grep -q 'libxkbcommon-x11.so.0' || missing+=(libxkbcommon-x11-0)
# the rest of what Qt's xcb platform plugin links against (real windows under Xvfb)
for pair in libxcb-icccm.so.4:libxcb-icccm4 libxcb-keysyms.so.1:libxcb-keysyms1 libxcb-image.so.0:libxcb-image0 \
            libxcb-render-util.so.0:libxcb-render-util0 libxcb-shape.so.0:libxcb-shape0 libxcb-randr.so.0:libxcb-randr0 \
            libxcb-xkb.so.1:libxcb-xkb1 libxcb-xinerama.so.0:libxcb-xinerama0 libxcb-xfixes.so.0:libxcb-xfixes0 \
            libxcb-sync.so.1:libxcb-sync1 libxcb-shm.so.0:libxcb-shm0 libxcb-randr.so.0:libxcb-randr0 \
            libfontconfig.so.1:libfontconfig1 libdbus-1.so.3:libdbus-1-3 libGLX_mesa.so.0:libglx-mesa0; do
  ldconfig -p 2>/dev/null | grep -q "${pair%%:*}" || missing+=("${pair##*:}")
done
command -v desktop-file-validate >/dev/null 2>&1 || missing+=(desktop-file-utils)
command -v appstreamcli >/dev/null 2>&1 || missing+=(appstream)
command -v rsvg-convert >/dev/null 2>&1 || missing+=(librsvg2-bin)
if [ "${1:-}" = "--package" ]; then
  command -v objdump >/dev/null 2>&1 || missing+=(binutils)
  command -v openbox >/dev/null 2>&1 || missing+=(openbox)
  command -v xdotool >/dev/null 2>&1 || missing+=(xdotool)
  command -v import >/dev/null 2>&1 || missing+=(imagemagick)
fi
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "sysdeps: missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
  exit 0
fi
echo "sysdeps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
