"""Run pare_node's pipeline over a rosbag2 file (MCAP or sqlite3) and write its outputs to a
new bag, for users without a live camera.

    ros2 run pare_ros process_bag in_bag out_bag --image-topic /camera/color/image_raw \
        --camera-info-topic /camera/color/camera_info --params config/pare.yaml

Images (sensor_msgs/Image or CompressedImage) are processed in log-time order, every one of
them (offline there is no reason to drop frames). Outputs are written with the image's log
time under the node's topic names: /pare_node/bodies, /tf, /pare_node/markers and, with
--debug-images, /pare_node/debug_image. Bad frames are skipped and counted, as in the node.
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter
from pathlib import Path

from .bag_io import BagWriter, read_messages
from .camera_info import CameraInfoCache
from .frame_types import FrameError, ProcessorSettings
from .param_file import ParamSource
from .pipeline_factory import StartupError, build_processor

log = logging.getLogger("process_bag")


def settings_from(params: ParamSource) -> ProcessorSettings:
    p = params.p
    return ProcessorSettings(
        publish_tf=p("publish_tf"), joint_frames=p("tf.joint_frames"), tf_prefix=p("tf.prefix"),
        publish_markers=p("publish_markers"), markers_mesh=p("markers.mesh"),
        markers_max_rate=p("markers.max_rate"), markers_color_mode=p("markers.color_mode"),
        markers_alpha=p("markers.alpha"), publish_debug_image=True,
        publish_rotmats=p("publish_rotmats"), publish_vertices=p("publish_vertices"),
        intrinsics_source=p("intrinsics_source"))


def process_bag(input_bag: Path, output_bag: Path, image_topic: str, info_topic: str,
                params: ParamSource, storage: str | None = None, debug_images: bool = False,
                namespace: str = "/pare_node", copy_inputs: bool = False) -> Counter:
    processor, label, report = build_processor(params, settings_from(params))
    log.info("%s", report.banner())
    cache = CameraInfoCache(size=50, allow_latest=bool(params.p("camera_info.allow_latest")))
    counts: Counter = Counter()
    with BagWriter(output_bag, storage) as bag:
        for topic, _, log_ns, msg in read_messages(input_bag, {image_topic, info_topic}):
            if copy_inputs:
                bag.write(topic, msg, log_ns)
            if topic == info_topic:
                cache.add(msg)
                continue
            size = (msg.width, msg.height) if hasattr(msg, "width") else None
            info, _ = cache.lookup(msg.header.stamp, msg.header.frame_id, image_size=size)
            # Markers are rate-limited by the bag's own clock, so replays are reproducible.
            try:
                out = processor.process(msg, info, want_markers=True, want_debug=debug_images,
                                        now=log_ns * 1e-9)
            except FrameError as exc:
                counts[exc.reason] += 1
                log.warning("skipping frame at %.3f s (%s): %s", log_ns * 1e-9, exc.reason, exc)
                continue
            for warning in out.warnings:
                log.warning("%s", warning)
            bag.write_raw(f"{namespace}/bodies", "pare_ros/msg/SmplBodyArray", out.bodies.serialize(), log_ns)
            if out.transforms:
                bag.write_raw("/tf", "tf2_msgs/msg/TFMessage", out.transforms.serialize(), log_ns)
            if out.markers is not None and len(out.markers):
                bag.write_raw(f"{namespace}/markers", "visualization_msgs/msg/MarkerArray", out.markers.serialize(), log_ns)
            if out.debug_image is not None:
                bag.write(f"{namespace}/debug_image", out.debug_image, log_ns)
            counts["processed"] += 1
            counts["people"] += out.people
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="process_bag", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input_bag", type=Path)
    parser.add_argument("output_bag", type=Path)
    parser.add_argument("--image-topic", default="/image")
    parser.add_argument("--camera-info-topic", default="/camera_info")
    parser.add_argument("--params", type=Path, default=None, help="pare_node parameter YAML")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a parameter (YAML syntax for the value)")
    parser.add_argument("--storage", choices=("mcap", "sqlite3"), default=None)
    parser.add_argument("--debug-images", action="store_true", help="also write mesh overlays")
    parser.add_argument("--copy-inputs", action="store_true", help="copy the input topics too")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s] %(message)s")
    import yaml

    overrides = {}
    for item in args.set:
        name, _, value = item.partition("=")
        overrides[name] = yaml.safe_load(value) if value else ""
    try:
        if not args.input_bag.exists():
            raise FileNotFoundError(f"input bag not found: {args.input_bag}")
        if args.output_bag.exists():
            raise FileExistsError(f"output bag exists: {args.output_bag}")
        counts = process_bag(args.input_bag, args.output_bag, args.image_topic, args.camera_info_topic,
                             ParamSource(args.params, overrides), args.storage, args.debug_images,
                             copy_inputs=args.copy_inputs)
    except (StartupError, FileNotFoundError, FileExistsError, ValueError) as exc:
        log.error("%s", exc)
        return 1
    log.info("wrote %s: %s", args.output_bag, dict(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
