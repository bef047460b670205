#!/usr/bin/env bash
# Main job: set up (first run only), then
#  1. `pare-ros infer` on a real photograph that scikit-image ships:
#     out/demo/{results.json,results.npz,overlay.png}
#  2. a real ROS 2 graph – camera replaying the photo with CameraInfo, pare_node with
#     config/pare.yaml, and a bag recorder – leaving out/ros_demo/pare_output_bag (MCAP) and
#     out/ros_demo/overlays/*.png.
# Uses the official files in the model directory (~/.local/share/pare_ros/model, or
# $PARE_ROS_MODEL_DIR; model/README.md) when present; otherwise untrained weights and the
# synthetic body model, with a loud warning that the results are meaningless.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$REPO/scripts/bootstrap.sh"
source "$REPO/scripts/env.sh"
OUT="${1:-$REPO/out}"
echo "[demo] 1/2 pare-ros infer on scikit-image's astronaut photo"
python -m pare_ros infer skimage:astronaut --allow-untrained --out "$OUT/demo"
echo "[demo] 2/2 ROS graph: camera_replay -> pare_node -> bag_recorder"
python -m pare_ros.ros.demo_graph --out "$OUT/ros_demo" --source skimage:astronaut --frames 5 --rate 1.0
echo "[demo] outputs in $OUT/demo and $OUT/ros_demo"
