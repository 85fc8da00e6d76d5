#!/usr/bin/env bash
# Builds the standalone Linux app (`make package`; see packaging/README.md):
#   packaging/dist/wmstudio-<version>-linux-<arch>-cuda.tar.gz   PyTorch with its CUDA libraries (GPU or CPU)
#   packaging/dist/wmstudio-<version>-linux-<arch>-cpu.tar.gz    the same without the CUDA libraries PyTorch
#                                                               loads only on a GPU (CPU only)
# A build venv (packaging/.build-venv) gets PyTorch, wmstudio's dependencies and PyInstaller from the
# package registry on its first run; later runs reuse it. FLAVOURS="cuda" or "cpu" builds one flavour.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PY:-python3}
VENV=packaging/.build-venv
TORCH_SPEC=${TORCH_SPEC:-torch==2.14.1 torchvision==0.29.1}
FLAVOURS=${FLAVOURS:-cuda cpu}
BUILD=packaging/build
DIST=packaging/dist

if [ ! -f "$VENV/.stamp" ]; then
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q $TORCH_SPEC
  "$VENV/bin/pip" install -q . 'pyinstaller>=6.10'
  touch "$VENV/.stamp"
fi
VERSION=$("$VENV/bin/python" -c "import sys; sys.path.insert(0, '.'); import wmstudio; print(wmstudio.__version__)")
NAME=wmstudio-$VERSION-linux-$(uname -m)

# 1. PyInstaller, one folder: packaging/build/pyinstaller/wmstudio/{wmstudio,_internal/}
(cd packaging && OMP_NUM_THREADS=1 .build-venv/bin/pyinstaller --noconfirm --log-level WARN \
   --distpath build/pyinstaller --workpath build/work wmstudio.spec)

# 2. The app folder: the executable, its `wmstudio-gui` link, desktop integration, licence, readme
APP=$BUILD/$NAME-cuda
rm -rf "$APP" && cp -a "$BUILD/pyinstaller/wmstudio" "$APP"
ln -s wmstudio "$APP/wmstudio-gui"
echo cuda > "$APP/_internal/FLAVOUR"
echo "$VERSION" > "$APP/VERSION"
mkdir -p "$APP/share/applications" "$APP/share/metainfo"
cp packaging/desktop/io.github.wmstudio.WatermarkStudio.desktop "$APP/share/applications/"
cp packaging/desktop/io.github.wmstudio.WatermarkStudio.metainfo.xml "$APP/share/metainfo/"
for d in packaging/desktop/icons/*x*; do
  mkdir -p "$APP/share/icons/hicolor/$(basename "$d")/apps" && cp "$d"/*.png "$APP/share/icons/hicolor/$(basename "$d")/apps/"
done
mkdir -p "$APP/share/icons/hicolor/scalable/apps" && cp packaging/desktop/icons/*.svg "$APP/share/icons/hicolor/scalable/apps/"
cp packaging/install-desktop.sh LICENSE "$APP/"
cp packaging/README-app.txt "$APP/README.txt"

# 3. The cpu flavour: a hard-linked copy less the CUDA libraries that nothing links (cuDNN's engines,
#    cuSOLVER, ...: PyTorch dlopens them on a GPU only); the ones libtorch links stay, or `import torch` fails
for flavour in $FLAVOURS; do
  if [ "$flavour" = cpu ]; then
    rm -rf "$BUILD/$NAME-cpu" && cp -al "$APP" "$BUILD/$NAME-cpu"
    rm "$BUILD/$NAME-cpu/_internal/FLAVOUR" && echo cpu > "$BUILD/$NAME-cpu/_internal/FLAVOUR"
    "$VENV/bin/python" packaging/cpu_flavour.py "$BUILD/$NAME-cpu"
  fi
done

# 4. Archives
mkdir -p "$DIST"
for flavour in $FLAVOURS; do
  tar -C "$BUILD" -czf "$DIST/$NAME-$flavour.tar.gz" "$NAME-$flavour"
  echo "$DIST/$NAME-$flavour.tar.gz: $(du -m "$DIST/$NAME-$flavour.tar.gz" | cut -f1) MB packed, $(du -sm "$BUILD/$NAME-$flavour" | cut -f1) MB unpacked"
done
case " $FLAVOURS " in *" cuda "*) ;; *) rm -rf "$APP" ;; esac
