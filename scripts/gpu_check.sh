#!/usr/bin/env bash
# The engine on a CUDA machine: the engine's tests (run.device = "auto" resolves to the GPU there),
# then the demo, an attack run and a landscape from the CLI with run.device = "cuda". Needs a Python
# with torch, torchvision, h5py, safetensors, scikit-learn, scipy, matplotlib and pytest; Qt and Ray
# are not needed (their tests are left out). Writes its logs to $OUT (default: ./gpu-check).
set -u
OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
PY=${PY:-python3}
export PYTHONPATH=$PWD
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" | tee "$OUT/device.txt"
"$PY" -m pytest -q -ra -p no:cacheprovider -m "not gl and not cluster and not soak" \
    tests/test_pipeline.py tests/test_methods.py tests/test_attacks.py tests/test_landscape.py \
    tests/test_landscape_eval_setup.py tests/test_normalize.py tests/test_transfer.py tests/test_triggers.py \
    tests/test_checkpoints_export.py tests/test_null_models.py -k "not histogram_widget and not settings_form" 2>&1 | tail -40 > "$OUT/pytest.txt"
tail -5 "$OUT/pytest.txt"
{
  "$PY" -m wmstudio demo --out "$OUT/demo.h5" -s run.device=cuda 2>&1 | tail -5
  "$PY" -m wmstudio landscape "$OUT/demo.h5" --kind plane --resolution 21 --device cuda 2>&1 | tail -8
  "$PY" -m wmstudio inspect "$OUT/demo.h5" 2>&1 | tail -25
  for kind in fine_prune quantize distill neural_cleanse; do
    echo "== attack $kind"
    "$PY" -m wmstudio demo --out "$OUT/$kind.h5" -q -s run.device=cuda -s attack.kind=$kind -s attack.bits=4 2>&1 | tail -3
    "$PY" -m wmstudio inspect "$OUT/$kind.h5" 2>&1 | grep -iE "attack|restore|trigger" | head -8
  done
} > "$OUT/cli.txt" 2>&1
tail -40 "$OUT/cli.txt"
