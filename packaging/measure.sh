#!/usr/bin/env bash
# Size and start-up of the standalone app next to the venv app (issue 13), one command that prints its figures:
#
#   packaging/measure.sh [ROUNDS]        (after `make package`; ROUNDS of each, default 3)
#
# Sizes: each archive, its unpacked folder, and the venv's site-packages. Start-up: seconds from
# starting `wmstudio-gui` (no arguments, an empty HOME) to its window being visible under Xvfb +
# openbox, for the bundle of each flavour and for the venv app (VENV_GUI, default .venv/bin/wmstudio-gui),
# taken in turns. "cold" first evicts the app's files from the page cache (posix_fadvise DONTNEED on
# each file: the first start after unpacking or after a reboot), "warm" starts it again at once.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
ROUNDS=${1:-3}
VENV_GUI=${VENV_GUI:-$ROOT/.venv/bin/wmstudio-gui}
VENV_DIR=${VENV_DIR:-$ROOT/.venv}
source "$HERE/xvfb.sh"
WORK=$(mktemp -d /tmp/wmstudio-measure.XXXXXX)
trap 'stop_display; rm -rf "$WORK"' EXIT

echo "== sizes (MB)"
for a in "$HERE"/dist/wmstudio-*.tar.gz; do
  n=$(basename "$a" .tar.gz)
  echo "$n: archive $(du -m "$a" | cut -f1), unpacked $(du -sm "$HERE/build/$n" | cut -f1)"
done
echo "venv ($VENV_DIR): $(du -sm "$VENV_DIR" | cut -f1)"

evict() {  # drop the page-cache pages of every file under $1 (no root needed, other files untouched)
  python3 - "$1" <<'PY'
import os, sys
for root, _, files in os.walk(sys.argv[1]):
    for name in files:
        try:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
        except OSError:
            continue
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
PY
}
to_window() {  # to_window CMD...: seconds to a visible window, then closes the app
  local home t0 pid win t
  home=$(mktemp -d "$WORK/home.XXXX")
  t0=$(date +%s.%N)
  env -i PATH=/usr/bin:/bin HOME="$home" LANG=C.UTF-8 DISPLAY=":$DISPLAY_NUM" QT_QPA_PLATFORM=xcb "$@" >/dev/null 2>&1 &
  pid=$!
  win=$(wait_window 300) || { kill "$pid"; echo "no window"; return; }
  t=$(awk "BEGIN { printf \"%.2f\", $(date +%s.%N) - $t0 }")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "$t"
}

start_display
echo "== start to window (s): app cold warm"
for r in $(seq "$ROUNDS"); do
  for dir in "$HERE"/build/wmstudio-*-linux-*; do
    [ -x "$dir/wmstudio-gui" ] || continue
    evict "$dir"; cold=$(to_window "$dir/wmstudio-gui"); warm=$(to_window "$dir/wmstudio-gui")
    echo "round $r $(basename "$dir") $cold $warm"
  done
  evict "$VENV_DIR"; cold=$(to_window $VENV_GUI); warm=$(to_window $VENV_GUI)
  echo "round $r venv $cold $warm"
done
