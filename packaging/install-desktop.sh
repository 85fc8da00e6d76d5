#!/usr/bin/env bash
# Adds Watermark Studio to the desktop's application menu, for this user (or removes it: --remove).
# Run it from the unpacked app folder, where it stays: the menu entry starts ./wmstudio-gui there.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ID=io.github.wmstudio.WatermarkStudio
DATA=${XDG_DATA_HOME:-$HOME/.local/share}
if [ "${1:-}" = "--remove" ]; then
  rm -f "$DATA/applications/$ID.desktop" "$DATA/metainfo/$ID.metainfo.xml"
  find "$DATA/icons/hicolor" -name "$ID.*" -delete 2>/dev/null || true
  echo "removed Watermark Studio from the application menu"
  exit 0
fi
mkdir -p "$DATA/applications" "$DATA/metainfo"
sed -e "s|^Exec=wmstudio-gui|Exec=\"$HERE/wmstudio-gui\"|" -e "s|^TryExec=wmstudio-gui|TryExec=$HERE/wmstudio-gui|" \
  "$HERE/share/applications/$ID.desktop" > "$DATA/applications/$ID.desktop"
cp "$HERE/share/metainfo/$ID.metainfo.xml" "$DATA/metainfo/"
cp -r "$HERE/share/icons" "$DATA/"
command -v update-desktop-database >/dev/null && update-desktop-database -q "$DATA/applications" || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$DATA/icons/hicolor" 2>/dev/null || true
echo "added Watermark Studio to the application menu ($DATA/applications/$ID.desktop)"
