#!/usr/bin/env bash
# Regenerate every figure in plots/ with the project's own commands, on the built-in data
# (scikit-learn's digits: nothing to download). plots/README.md says what each one shows.
#
#   plots/make_gallery.sh          # intermediate files in a temporary folder, removed at the end
#   plots/make_gallery.sh WORKDIR  # keep the checkpoints and .h5 files in WORKDIR
#
# Only PNGs land in plots/, and gallery_figures.json: the figures plots/README.md states.
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
load_before=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo nan)
: > "$WORK/steps.txt"  # each step's start in seconds: gallery_figures.py reads what each took
step() { echo; echo "== $* ($((SECONDS - start)) s)"; echo "$((SECONDS - start)) $*" >> "$WORK/steps.txt"; }

step "1. the built-in demo: 2D surface of a small conv net on digits, four views (default levels)"
$SURF --out "$WORK/demo.h5"
$PLOT "$WORK/demo.h5" --out "$PLOTS/demo"

step "2. two minimizers: small batch (32, a checkpoint every epoch), large batch (all 1438 images)"
$TRAIN --lr 0.05 --batch-size 32 --epochs 15 --save-every 1 --out "$WORK/small"
$TRAIN --lr 1.0 --batch-size 1438 --epochs 60 --save-every 60 --out "$WORK/large"
SMALL="$WORK/small/model_15.pt"
LARGE="$WORK/large/model_60.pt"

step "3. 1D and 2D filter-normalized surfaces of both (the same random directions: seed 0)"
for name in small large; do
  model="$SMALL"; [ "$name" = large ] && model="$LARGE"
  $SURF --model "$model" --arch digits_cnn --x=-1:1:41 --split train,test --out "$WORK/${name}_1d.h5"
  $SURF --model "$model" --arch digits_cnn --x=-1:1:31 --y=-1:1:31 --samples 500 \
    --out "$WORK/${name}_2d.h5"
done
$PLOT "$WORK/small_1d.h5" --log --out "$PLOTS/small_batch"

step "4. small batch vs large batch on one scale (1D: loss solid, accuracy dashed)"
$PLOT "$WORK/small_1d.h5" "$WORK/large_1d.h5" --compare --twin --out "$PLOTS/batch_compare"
$PLOT "$WORK/small_2d.h5" "$WORK/large_2d.h5" --compare --kinds contour --out "$PLOTS/batch_compare"

step "5. linear interpolation from the small-batch (x=0) to the large-batch (x=1) minimizer"
# --dir-type states interpolates the BatchNorm running statistics too, so x=1 is the large-batch
# network itself; --bn-recompute re-estimates them at every point from training batches instead.
$SURF --model "$SMALL" --model2 "$LARGE" --arch digits_cnn --dir-type states --x=-0.1:1.5:33 \
  --split train,test --out "$WORK/interp.h5"
$SURF --model "$SMALL" --model2 "$LARGE" --arch digits_cnn --x=-0.1:1.5:33 --bn-recompute 10 \
  --split train,test --out "$WORK/interp_bn.h5"
$PLOT "$WORK/interp.h5" --log --out "$PLOTS/interpolation"
$PLOT "$WORK/interp.h5" "$WORK/interp_bn.h5" --compare --log --quantity test_loss \
  --titles "interpolated statistics|statistics recomputed at every point" --out "$PLOTS/interpolation_bn"

step "6. the small-batch run's optimization path on its two principal directions"
landscape-traj --checkpoints "$WORK/small/model_*.pt" --final "$SMALL" --arch digits_cnn \
  --out "$WORK/path_pca.h5" --overwrite
$SURF --model "$SMALL" --arch digits_cnn --directions "$WORK/path_pca.h5" --samples 500 \
  --out "$WORK/path_surface.h5"          # no --x/--y: a grid that covers the path
$PLOT "$WORK/path_surface.h5" --trajectory "$WORK/path_pca.h5" --out "$PLOTS/path"

step "7. how convex: the Hessian's extreme eigenvalues over the small-batch minimizer's plane"
$SURF --model "$SMALL" --arch digits_cnn --x=-1:1:15 --y=-1:1:15 --samples 300 --metrics loss,eig \
  --out "$WORK/convexity.h5"
$PLOT "$WORK/convexity.h5" --kinds contour --out "$PLOTS/convexity_loss"
$PLOT "$WORK/convexity.h5" --quantity eig_ratio --kinds heatmap --out "$PLOTS/convexity_ratio"
landscape-hessian --model "$SMALL" --arch digits_cnn --dataset digits --samples 1000 --top-k 5 --trace \
  --density --out "$WORK/hessian.h5" --overwrite
cp "$WORK/hessian.png" "$PLOTS/hessian_density.png"

step "8. pruned minima: the network, pruned and retrained, pruned and trained from scratch"
landscape-prune --model "$SMALL" --arch digits_cnn --sensitivity --ratios 0.1:0.9:9 --no-progress \
  --out "$WORK/sensitivity.h5" --overwrite
cp "$WORK/sensitivity.png" "$PLOTS/prune_sensitivity.png"
landscape-prune --model "$SMALL" --arch digits_cnn --plan features.7=0.5 --out "$WORK/pruned.pt" --overwrite
$TRAIN --init-from "$WORK/pruned.pt" --lr 0.001 --batch-size 32 --epochs 5 --save-every 5 --out "$WORK/retrained"
$TRAIN --plan features.7=0.5 --lr 0.05 --batch-size 32 --epochs 15 --save-every 15 --out "$WORK/scratch"
for run in small/model_15 retrained/model_5 scratch/model_15; do
  name=${run%%/*}
  $SURF --model "$WORK/$run.pt" --arch digits_cnn --x=-1:1:41 --out "$WORK/prune_${name}_1d.h5"
  $SURF --model "$WORK/$run.pt" --arch digits_cnn --x=-1:1:31 --y=-1:1:31 --samples 500 \
    --out "$WORK/prune_${name}_2d.h5"
done
$PLOT "$WORK"/prune_{small,retrained,scratch}_1d.h5 --compare --out "$PLOTS/pruned_compare"
$PLOT "$WORK"/prune_{small,retrained,scratch}_2d.h5 --compare --kinds contour --out "$PLOTS/pruned_compare"

step "9. quantized minima: full precision, BinaryConnect and stochastic rounding, binary weights"
QTRAIN="landscape-train --arch mlp_bn --dataset digits --optimizer adam --lr 0.01 --batch-size 64 \
  --weight-decay 0 --epochs 40 --save-every 40 --no-progress --overwrite"
$QTRAIN --out "$WORK/fp"
$QTRAIN --quant bc --bits 1 --out "$WORK/bc"
$QTRAIN --quant sr --bits 1 --out "$WORK/sr"
for m in fp bc sr; do
  $SURF --model "$WORK/$m/model_40.pt" --arch mlp_bn --x=-1:1:41 --out "$WORK/${m}_1d.h5"
  $SURF --model "$WORK/$m/model_40.pt" --arch mlp_bn --x=-1:1:31 --y=-1:1:31 --out "$WORK/${m}_2d.h5"
done
$PLOT "$WORK"/{fp,bc,sr}_2d.h5 --compare --kinds contour --out "$PLOTS/quant_compare"
$PLOT "$WORK"/{fp,bc,sr}_1d.h5 --compare --twin --out "$PLOTS/quant_compare"
landscape-markov --overwrite --out "$PLOTS/quant_markov.png"

step "10. mode connectivity: a second small-batch network (seed 1), the curve between the two, its plane"
$TRAIN --lr 0.05 --batch-size 32 --epochs 15 --save-every 15 --seed 1 --out "$WORK/seed1"
landscape-connect "$SMALL" "$WORK/seed1/model_15.pt" --arch digits_cnn --dataset digits --curve bezier \
  --epochs 20 --no-progress --overwrite --out "$WORK/ab_curve.pt"
landscape-connect --eval "$WORK/ab_curve.pt" --points 41 --split train,test --threads "$OMP_NUM_THREADS" \
  --no-progress --overwrite --out "$WORK/ab_path.h5"
$PLOT "$WORK/ab_path.h5" --out "$PLOTS/connect"
$SURF --curve "$WORK/ab_curve.pt" --out "$WORK/ab_plane.h5"   # no --x/--y: a grid around a, b and the bend
$PLOT "$WORK/ab_plane.h5" --path "$WORK/ab_curve.pt" --log --out "$PLOTS/connect"

step "11. sharpness by numbers: the small-batch, large-batch and seed-1 minima in one table"
landscape-compare "$SMALL" "$LARGE" "$WORK/seed1/model_15.pt" --arch digits_cnn --dataset digits \
  --threads "$OMP_NUM_THREADS" --overwrite --out "$WORK/compare"
cp "$WORK/compare/gap_vs_measure.png" "$PLOTS/sharpness_gap.png"
cp "$WORK/compare/curves_1d.png" "$PLOTS/sharpness_curves_1d.png"

step "12. permutation alignment: the seed-1 network's units matched to the small-batch one's; barrier against width"
landscape-align "$SMALL" "$WORK/seed1/model_15.pt" --arch digits_cnn --dataset digits --threads "$OMP_NUM_THREADS" \
  --overwrite --out "$WORK/seed1_aligned.pt"
python "$PLOTS/alignment.py" "$WORK"   # the aligned line beside ab_path.h5's; pairs of MLPs and CNNs of 5 widths

step "13. one network, many minima: SGD small and large batch, SAM, pruned, BC, distilled, low-rank"
MANY="$WORK/many"
mkdir -p "$MANY"
$TRAIN --lr 0.05 --batch-size 32 --epochs 15 --save-every 15 --sam 0.05 --out "$MANY/sam"
# BinaryConnect with the quantization paper's Adam (with SGD at lr 0.05 the binary network trains far worse)
landscape-train --arch digits_cnn --dataset digits --optimizer adam --lr 0.01 --weight-decay 0 --batch-size 32 \
  --epochs 15 --save-every 15 --quant bc --bits 1 --no-progress --overwrite --out "$MANY/bc"
landscape-train --arch resnet20 --dataset digits --optimizer sgd --weight-decay 5e-4 --no-progress --overwrite \
  --lr 0.05 --batch-size 32 --epochs 30 --save-every 30 --out "$MANY/teacher"
$TRAIN --lr 0.05 --batch-size 32 --epochs 15 --save-every 15 --teacher "$MANY/teacher/model_30.pt" \
  --teacher-arch resnet20 --kd-temperature 4 --kd-alpha 0.9 --out "$MANY/kd"
landscape-lowrank "$SMALL" --arch digits_cnn --rank-ratio 0.5 --out "$MANY/lowrank.pt" --overwrite
$TRAIN --init-from "$MANY/lowrank.pt" --lr 0.01 --batch-size 32 --epochs 15 --milestones 8,12 --save-every 15 \
  --out "$MANY/lowrank_retrained"
landscape-compare "$SMALL" "$LARGE" "$MANY/sam/model_15.pt" "$WORK/retrained/model_5.pt" "$MANY/bc/model_15.pt" \
  "$MANY/kd/model_15.pt" "$MANY/lowrank_retrained/model_15.pt" --arch digits_cnn --dataset digits \
  --threads "$OMP_NUM_THREADS" --overwrite --out "$MANY/compare"
cp "$MANY/compare/curves_1d.png" "$PLOTS/many_minima_1d.png"
cp "$MANY/compare/contours_2d.png" "$PLOTS/many_minima_contour.png"
cp "$MANY/compare/gap_vs_measure.png" "$PLOTS/many_minima_gap.png"

step "14. does flatness predict the gap? 15 minima (batch sizes, seeds, weight decay, SAM), Kendall's tau"
python "$PLOTS/minima_study.py" "$WORK/study" --figures "$PLOTS"

step "done: the figures plots/README.md states"
python "$PLOTS/gallery_figures.py" "$WORK" "$((SECONDS - start))" "$load_before"
ls -l "$PLOTS"/*.png
