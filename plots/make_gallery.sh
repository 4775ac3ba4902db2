#!/usr/bin/env bash
# Regenerate every figure in plots/ with the project's own commands, on the built-in data
# (scikit-learn's digits: nothing to download). About a minute and a half on two CPU cores.
#
#   plots/make_gallery.sh          # intermediate files in a temporary folder, removed at the end
#   plots/make_gallery.sh WORKDIR  # keep the checkpoints and .h5 files in WORKDIR
#
# Only PNGs land in plots/; plots/README.md says what each one shows.
set -euo pipefail
PLOTS="$(cd "$(dirname "$0")" && pwd)"
if [ $# -ge 1 ]; then
  mkdir -p "$1"
  WORK="$(cd "$1" && pwd)"
else
  WORK="$(mktemp -d)"
  trap 'rm -rf "$WORK"' EXIT
fi
# A private cache: the demo network is trained here, not taken from ~/.cache/landscape.
export LANDSCAPE_CACHE="$WORK/cache"
# The networks are tiny: one thread per process is the fastest (and fair on a shared machine).
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
SURF="landscape-surf --threads $OMP_NUM_THREADS --no-progress --overwrite"
PLOT="landscape-plot --formats png --dpi 100"
TRAIN="landscape-train --arch digits_cnn --dataset digits --optimizer sgd --weight-decay 5e-4 \
  --no-progress --overwrite"
start=$SECONDS
step() { echo; echo "== $* ($((SECONDS - start)) s)"; }

step "1. the built-in demo: 2D surface of a small conv net on digits, four views"
$SURF --out "$WORK/demo.h5"
$PLOT "$WORK/demo.h5" --kinds contour --vmin 0 --vmax 10 --levels 21 --out "$PLOTS/demo"
$PLOT "$WORK/demo.h5" --kinds contourf,heatmap,3d --out "$PLOTS/demo"

step "2. two minimizers: small batch (32, a checkpoint every epoch), large batch (all 1437 images)"
$TRAIN --lr 0.05 --batch-size 32 --epochs 15 --save-every 1 --out "$WORK/small"
$TRAIN --lr 1.0 --batch-size 1437 --epochs 60 --save-every 60 --out "$WORK/large"
SMALL="$WORK/small/model_15.pt"
LARGE="$WORK/large/model_60.pt"

step "3. 1D and 2D filter-normalized surfaces of both (the same random directions: seed 0)"
for name in small large; do
  model="$SMALL"; [ "$name" = large ] && model="$LARGE"
  $SURF --model "$model" --arch digits_cnn --x=-1:1:41 --out "$WORK/${name}_1d.h5"
  $SURF --model "$model" --arch digits_cnn --x=-1:1:31 --y=-1:1:31 --samples 500 \
    --out "$WORK/${name}_2d.h5"
done
$PLOT "$WORK/small_1d.h5" --log --out "$PLOTS/small_batch"

step "4. small batch vs large batch on one scale"
$PLOT "$WORK/small_1d.h5" "$WORK/large_1d.h5" --compare --out "$PLOTS/batch_compare"
$PLOT "$WORK/small_2d.h5" "$WORK/large_2d.h5" --compare --kinds contour --vmin 0 --vmax 10 \
  --levels 21 --out "$PLOTS/batch_compare"

step "5. linear interpolation from the small-batch (x=0) to the large-batch (x=1) minimizer"
# --dir-type states interpolates the BatchNorm running statistics too, so x=1 is the large-batch
# network itself. Left of about x=-0.15 the extrapolated running variances turn negative (the
# small-batch ones are the smaller) and the network's output is NaN: hence x starts at -0.1.
$SURF --model "$SMALL" --model2 "$LARGE" --arch digits_cnn --dir-type states --x=-0.1:1.5:33 \
  --out "$WORK/interp.h5"
$PLOT "$WORK/interp.h5" --log --out "$PLOTS/interpolation"

step "6. the small-batch run's optimization path on its two principal directions"
landscape-traj --checkpoints "$WORK/small/model_*.pt" --final "$SMALL" --arch digits_cnn \
  --out "$WORK/path_pca.h5" --overwrite
# The window holds the whole path, which runs from about (-10, -1) at epoch 0 to the origin.
$SURF --model "$SMALL" --arch digits_cnn --directions "$WORK/path_pca.h5" --x=-13:3:33 \
  --y=-5:5:21 --samples 500 --out "$WORK/path_surface.h5"
$PLOT "$WORK/path_surface.h5" --trajectory "$WORK/path_pca.h5" --out "$PLOTS/path"

step "done"
ls -l "$PLOTS"/*.png
