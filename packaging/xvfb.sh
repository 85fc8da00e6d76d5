# Sourced by check_bundle.sh and measure.sh: a private Xvfb + openbox display, and waiting for a window.
start_display() {  # sets DISPLAY_NUM; Xvfb and openbox are stopped by stop_display
  DISPLAY_NUM=${DISPLAY_NUM:-$((90 + RANDOM % 400))}
  Xvfb ":$DISPLAY_NUM" -screen 0 1600x1000x24 -nolisten tcp >/dev/null 2>&1 &
  XVFB_PID=$!
  for _ in $(seq 100); do DISPLAY=":$DISPLAY_NUM" xdotool getmouselocation >/dev/null 2>&1 && break; sleep 0.1; done
  DISPLAY=":$DISPLAY_NUM" openbox >/dev/null 2>&1 &
  OPENBOX_PID=$!
  sleep 1
}
stop_display() {
  kill "${OPENBOX_PID:-}" "${XVFB_PID:-}" 2>/dev/null || true
  wait "${OPENBOX_PID:-}" "${XVFB_PID:-}" 2>/dev/null || true
}
wait_window() {  # wait_window TIMEOUT_S: prints the id of the first visible "Watermark Studio" window
  local end=$(( $(date +%s) + $1 )) id
  while [ "$(date +%s)" -lt "$end" ]; do
    id=$(DISPLAY=":$DISPLAY_NUM" xdotool search --onlyvisible --name "Watermark Studio" 2>/dev/null | head -1 || true)
    if [ -n "$id" ]; then echo "$id"; return 0; fi
    sleep 0.05
  done
  return 1
}
