#!/usr/bin/env bash
# Drives the real app with real input (xdotool) under Xvfb + openbox, taking screenshots, to check a
# long mixed session as a user would (issue 9). Start the display and the app first:
#
#   Xvfb :77 -screen 0 1600x1000x24 &  DISPLAY=:77 openbox &
#   DISPLAY=:77 QT_QPA_PLATFORM=xcb XDG_CONFIG_HOME=/tmp/guisession/config \
#       python -m wmstudio.gui.app --demo --runs-dir /tmp/guiruns &
#   bash scripts/gui_session.sh STEP...      # steps below; screenshots go to $SHOTS
#
# The coordinates are for that 1600x1000 screen with the window where openbox first puts it
# (the default 1440x900 at 80,38); look at the screenshots, and adjust them if the layout changes.
set -euo pipefail
export DISPLAY=${DISPLAY:-:77}
SHOTS=${SHOTS:-/tmp/guisession/shots}
RUNS=${RUNS:-/tmp/guiruns}
mkdir -p "$SHOTS"
WIN=$(xdotool search --name "Watermark Studio$" | head -1)  # the title starts with the shown log

key() { xdotool windowactivate --sync "$WIN" >/dev/null 2>&1 || true; xdotool key --clearmodifiers "$@"; sleep 0.5; }
click() { xdotool mousemove "$1" "$2" click 1; sleep 0.6; }
typ() { xdotool type --delay 25 "$1"; sleep 0.3; }
shot() { import -window root "$SHOTS/$1.png"; echo "$SHOTS/$1.png"; }
choose() { click "$1" "$2"; typ "$3"; key Return; }          # a combo box: open, type the item, Enter
setnum() { xdotool mousemove "$1" "$2" click --repeat 3 1; key ctrl+a; typ "$3"; key Tab; }
file_dialog() { sleep 1.5; typ "$1"; key Return; sleep 1; }  # Qt's own file dialog: type the path

# the landscape tab's controls
KIND="541 157"; RES="677 157"; IMAGES="940 157"; COMPUTE="1036 157"; PUBLISHED="1135 157"; STOP="1232 157"
STORED="590 185"; SHOW="781 185"; COLOURS="951 185"; LOGSCALE="1003 185"
MAP2D="510 216"; SURF3D="591 216"; PATH1D="672 216"
RUNBTN="126 919"; PAUSEBTN="405 919"; CANCELBTN="491 919"; STAGES="264 919"

newest_log() { ls -t "$RUNS"/*.h5 | head -1; }
oldest_log() { ls -tr "$RUNS"/*.h5 | head -1; }

step_open_oldest() { key ctrl+o; file_dialog "$(oldest_log)"; key ctrl+3; sleep 1; shot open_oldest_landscape; }
step_3d() { key ctrl+3; click $SURF3D; sleep 2; shot surface_3d; }
step_file_menu() { click 100 65; sleep 0.5; shot file_menu; key Escape; }
step_export() { local d=/tmp/guisession/export_$(date +%H%M%S); mkdir -p "$d"; key ctrl+e; file_dialog "$d"; key Return; sleep 4; shot export_done; ls "$d"; }
step_published() { key ctrl+3; setnum $RES 11; setnum $IMAGES 200; click $PUBLISHED; sleep 3; shot published_running; sleep 40; shot published_done; }
step_dark_map() { key ctrl+3; click $MAP2D; choose $COLOURS magma; click $LOGSCALE; sleep 1; xdotool mousemove 1000 520; sleep 1; shot magma_log_hover; click $LOGSCALE; }
step_random_stop() { key ctrl+3; choose $KIND random; setnum $RES 21; click $COMPUTE; sleep 6; shot random_running; click $STOP; sleep 4; shot random_stopped; }
step_line() { key ctrl+3; choose $KIND line; setnum $RES 9; click $COMPUTE; sleep 25; shot line_done; }
step_run_pause_cancel() { key ctrl+1; key ctrl+r; sleep 3; key ctrl+p; sleep 2; shot run_paused; key ctrl+p; sleep 3; shot run_resumed; key ctrl+period; sleep 4; shot run_cancelled; }
step_run_watch() { key ctrl+r; for t in 1 2 3 4 5 6; do key ctrl+$(( (t % 2) + 1 )); sleep 3; done; shot run_watched; sleep 10; key ctrl+1; shot run_finished; }
step_tabs() { for t in 1 2 3 4 5 6; do key ctrl+$t; sleep 1; shot tab_$t; done; }
step_sweep() { key ctrl+5; click 560 157; file_dialog "${SWEEP:-/tmp/guisession/sweep}"; sleep 2; shot sweep_open; click 560 230; sleep 3; shot sweep_cell_opened; key ctrl+5; sleep 1; shot sweep_after_click; }

for s in "$@"; do "step_$s"; done
