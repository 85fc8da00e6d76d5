#!/usr/bin/env bash
# Checks a built app the way a user gets it (issue 13): unpacked outside the repository and run with a
# clean environment (no venv on PATH, no PYTHONPATH, HOME an empty temporary folder):
#   wmstudio --version, demo (headless, to the end), config --example + --check, inspect on the demo's
#   log, a plane landscape into that log on 2 worker processes, the sweep refusal, the desktop entry
#   installed by install-desktop.sh (validated), and the desktop app under Xvfb + openbox opening
#   that log, with screenshots of its 2D and 3D landscape views (which must differ).
#
#   packaging/check_bundle.sh packaging/dist/wmstudio-0.1.0-linux-x86_64-cpu.tar.gz [OUT]
#
# APP may be an archive or an unpacked app folder. Screenshots and outputs go to OUT (default
# packaging/build/check-<name>); look at OUT/landscape_2d.png and OUT/landscape_3d.png.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(realpath "$1")
NAME=$(basename "$SRC" .tar.gz)
OUT=$(realpath -m "${2:-$HERE/build/check-$NAME}")
rm -rf "$OUT" && mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/wmstudio-check.XXXXXX)
source "$HERE/xvfb.sh"
cleanup() { stop_display; [ -n "${APP_PID:-}" ] && kill "$APP_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
if [[ $SRC == *.tar.gz ]]; then
  tar -C "$WORK" -xzf "$SRC"
  APP=$WORK/$NAME
else
  APP=$SRC
fi
mkdir -p "$WORK/home" "$WORK/run"
cd "$WORK/run"
clean() { env -i PATH=/usr/bin:/bin HOME="$WORK/home" LANG=C.UTF-8 OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" "$@"; }
step() { echo "== $*"; }
fail() { echo "check_bundle: FAILED: $*" >&2; exit 1; }

step "version";  clean "$APP/wmstudio" --version | tee "$OUT/version.txt"
grep -qx "wmstudio $(cat "$APP/VERSION")" "$OUT/version.txt" || fail "--version does not name $(cat "$APP/VERSION")"
step "flavour $(cat "$APP/_internal/FLAVOUR")"
step "contents"  # Qt's xcb and offscreen platforms, the icon, the examples, the built-in digits
for f in PySide6/Qt/plugins/platforms/libqxcb.so PySide6/Qt/plugins/platforms/libqoffscreen.so ui/icons/wmstudio.svg \
         resources/examples/demo.toml sklearn/datasets/data/digits.csv.gz; do
  [ -f "$APP/_internal/$f" ] || fail "missing from the app: _internal/$f"
done
step "demo";     clean "$APP/wmstudio" demo --out demo.h5 | tee "$OUT/demo.txt"
step "config";   clean "$APP/wmstudio" config --example > example.toml && clean "$APP/wmstudio" config --check example.toml
step "inspect";  clean "$APP/wmstudio" inspect demo.h5 | tee "$OUT/inspect.txt"
for stage in embed finetune restore; do grep -Eq "^$stage +finished" "$OUT/inspect.txt" || fail "inspect: $stage not finished"; done
step "landscape (2 worker processes)"
clean "$APP/wmstudio" landscape demo.h5 --kind plane --resolution 15 --workers 2 | tail -3
step "sweep is refused with one error"
set +e; clean "$APP/wmstudio" sweep "$APP/_internal/resources/examples/cifar10_sweep.toml" --out sweep 2> "$OUT/sweep.txt"; rc=$?; set -e
[ "$rc" = 2 ] && grep -q "^wmstudio: error: sweeps run on Ray" "$OUT/sweep.txt" || fail "sweep: rc=$rc $(cat "$OUT/sweep.txt")"

step "desktop integration (install-desktop.sh into a temp XDG_DATA_HOME, then the validators)"
clean XDG_DATA_HOME="$WORK/xdg" "$APP/install-desktop.sh"
desktop-file-validate "$WORK/xdg/applications/io.github.wmstudio.WatermarkStudio.desktop" || fail "desktop-file-validate"
appstreamcli validate --no-net "$APP/share/metainfo/io.github.wmstudio.WatermarkStudio.metainfo.xml" >/dev/null \
  || fail "appstreamcli validate"

step "desktop app under Xvfb"
start_display
t0=$(date +%s.%N)
clean DISPLAY=":$DISPLAY_NUM" QT_QPA_PLATFORM=xcb "$APP/wmstudio-gui" demo.h5 > "$OUT/gui.txt" 2>&1 &
APP_PID=$!
WIN=$(wait_window 180) || fail "no window in 180 s: $(cat "$OUT/gui.txt")"
echo "window after $(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $t0 }") s"
sleep 4
DISPLAY=":$DISPLAY_NUM" xdotool windowactivate --sync "$WIN" key --clearmodifiers ctrl+3 || true
sleep 4
DISPLAY=":$DISPLAY_NUM" import -window root "$OUT/landscape_2d.png"
# the "3D surface" tab of the landscape view: its mnemonic, Alt+3 (no click at a fixed position)
DISPLAY=":$DISPLAY_NUM" xdotool windowactivate --sync "$WIN" key --clearmodifiers alt+3 || true
sleep 6
DISPLAY=":$DISPLAY_NUM" import -window root "$OUT/landscape_3d.png"
kill -0 "$APP_PID" || fail "the app exited: $(cat "$OUT/gui.txt")"
# the 3D view replaced the 2D map: most of the plot area changed (a missed click changes ~nothing)
changed=$(compare -metric AE -fuzz 5% "$OUT/landscape_2d.png" "$OUT/landscape_3d.png" null: 2>&1 || true)
awk -v n="$changed" 'BEGIN { exit !(n + 0 > 200000) }' || fail "the 3D surface did not open ($changed pixels changed)"
kill "$APP_PID"; wait "$APP_PID" 2>/dev/null || true; APP_PID=
echo "screenshots: $OUT/landscape_2d.png $OUT/landscape_3d.png"
echo "check_bundle: OK ($NAME)"
