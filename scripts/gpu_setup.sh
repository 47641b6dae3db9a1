#!/usr/bin/env bash
# Make scene2world's renderer (pyrender over NVIDIA EGL) runnable on a bare NVIDIA GPU machine
# that has the driver (libEGL_nvidia.so.0, 10_nvidia.json) but no glvnd loader and no internet.
# See docs/gpu.md. Two modes:
#
#   scripts/gpu_setup.sh fetch      # on a machine WITH internet (Debian/Ubuntu, pip): download
#                                   # the debs and wheels into build/gpu/ (git-ignored)
#   source scripts/gpu_setup.sh     # on the GPU machine, from the repo root: unpack + export env
#
# `source` is needed for the exports (PYTHONPATH, __EGL_VENDOR_LIBRARY_FILENAMES, ...).

GPU_DIR="${GPU_DIR:-build/gpu}"
PY_VERSION="${PY_VERSION:-3.12}"   # the GPU machine's python3

if [[ "${1:-}" == "fetch" ]]; then
  set -euo pipefail
  mkdir -p "$GPU_DIR/gl" "$GPU_DIR/whl" "$GPU_DIR/site" /tmp/amd64/partial
  o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
  apt-get "${o[@]}" update -qq
  # the glvnd loaders only (no Mesa: the NVIDIA vendor library does the work)
  (cd "$GPU_DIR/gl" && apt-get "${o[@]}" download libegl1 libglvnd0 libopengl0 libgl1 libglx0)
  # pyrender and what the GPU image lacks (it has numpy, numba, scipy, pillow, networkx, imageio,
  # pyarrow, pyyaml); --no-deps: only these wheels go into the --target folder (pyrender2 is the
  # pyrender fork scene2world depends on, docs/install.md)
  python3 -m pip download --no-deps --only-binary=:all: --python-version "$PY_VERSION" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 -d "$GPU_DIR/whl" \
    pyrender2==0.2.2 PyOpenGL==3.1.10 trimesh==5.2.0 pyglet==2.1.19 freetype-py==2.5.1 \
    pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 threadpoolctl==3.8.0
  # imageio-ffmpeg's Python code without its 170 MB ffmpeg binary (the wheel is 68 MB, more
  # than a device call may carry); it uses IMAGEIO_FFMPEG_EXE or an ffmpeg on PATH there
  # the interpreter that has imageio-ffmpeg: the project virtualenv when there is one
  local_py=python3; [[ -x .venv/bin/python ]] && local_py=.venv/bin/python
  site=$("$local_py" -c 'import imageio_ffmpeg, os; print(os.path.dirname(imageio_ffmpeg.__file__))')
  rm -rf "$GPU_DIR/site/imageio_ffmpeg" && cp -r "$site" "$GPU_DIR/site/"
  rm -rf "$GPU_DIR/site/imageio_ffmpeg/binaries/ffmpeg-"* "$GPU_DIR/site/imageio_ffmpeg/__pycache__"
  du -sh "$GPU_DIR"
  exit 0
fi

# ---- on the GPU machine (sourced) ----
for f in "$GPU_DIR"/gl/*.deb; do dpkg -x "$f" /; done
ldconfig
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/s2w-site "$GPU_DIR"/whl/*.whl
export PYTHONPATH="/tmp/s2w-site:$PWD/$GPU_DIR/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYOPENGL_PLATFORM=egl PYGLET_HEADLESS=1
# glvnd only searches /usr/share/glvnd/egl_vendor.d and /etc/glvnd/egl_vendor.d; the NVIDIA
# container runtime mounts the driver's vendor file under /usr/local/nvidia
for v in /usr/share/glvnd/egl_vendor.d/10_nvidia.json /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json; do
  if [[ -f "$v" && -z "${__EGL_VENDOR_LIBRARY_FILENAMES:-}" ]]; then export __EGL_VENDOR_LIBRARY_FILENAMES="$v"; fi
done
if command -v ffmpeg >/dev/null && [[ -z "${IMAGEIO_FFMPEG_EXE:-}" ]]; then
  export IMAGEIO_FFMPEG_EXE="$(command -v ffmpeg)"
fi
echo "gpu_setup: PYTHONPATH=$PYTHONPATH __EGL_VENDOR_LIBRARY_FILENAMES=${__EGL_VENDOR_LIBRARY_FILENAMES:-} ffmpeg=${IMAGEIO_FFMPEG_EXE:-none}"
