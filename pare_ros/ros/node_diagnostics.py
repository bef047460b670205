"""pare_node's /diagnostics: input, inference and output status from the node's counters.

Kept apart from node.py so the node stays a thin layer; reads only public node attributes
(``counters``, ``latency``, rates, ``lifecycle_state``, ...). Levels: an idle camera is a WARN
("no images received"), not an ERROR — a robot with its camera off is not broken; an inactive
(lifecycle) node is OK and says so.
"""
from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

from .stats import diagnostic_status

NO_IMAGES_AFTER = 5.0   # s without an image before the input status warns


def build_diagnostics(node) -> DiagnosticArray:
    from .node import INPUT_ERRORS, NODE_ERRORS

    name = f"pare_ros/{node.get_fully_qualified_name().lstrip('/')}"
    expected = float(node.p("expected_rate"))
    counts = node.counters.snapshot()
    since = node.image_rate.since_last()
    in_rate, out_rate = node.image_rate.rate(), node.output_rate.rate()
    ok, warn = DiagnosticStatus.OK, DiagnosticStatus.WARN
    bad_inputs = {k: counts.get(k, 0) for k in INPUT_ERRORS}
    state = node.lifecycle_state
    topic = node.image_sub.topic_name if node.image_sub is not None else node.image_topic
    if state != "active":
        in_level, in_msg = ok, f"node {state} (lifecycle): not subscribed"
    elif since is None:
        in_level, in_msg = warn, f"no images received on {topic}"
    elif since > NO_IMAGES_AFTER:
        in_level, in_msg = warn, f"no images received on {topic} for {since:.0f} s"
    elif sum(bad_inputs.values()):
        in_level, in_msg = warn, "bad input frames were skipped (see counters)"
    else:
        in_level, in_msg = ok, "receiving images"
    stages = node.latency.summary()
    p95 = stages.get("end_to_end", {}).get("p95", 0.0)
    inf_level, inf_msg = (warn, "p95 latency above 2/expected_rate") if p95 > 2.0 / expected else (ok, "ok")
    if node.processor is None:
        inf_level, inf_msg = ok, f"model not loaded (node {state})"
    # The node's own failures (not bad input): reported here, never as an input problem.
    node_errors = {k: counts.get(k, 0) for k in NODE_ERRORS}
    if sum(node_errors.values()):
        inf_level, inf_msg = warn, f"{sum(node_errors.values())} frames failed inside the node (see the log)"
    skipped = counts["stale"] + counts["overrun"]
    total = skipped + counts["published"]
    if not node._enabled:
        out_level, out_msg = ok, "paused (~/enable false)"
    elif state != "active":
        out_level, out_msg = ok, f"node {state} (lifecycle)"
    elif total and skipped / total > 0.2:
        out_level, out_msg = warn, f"{100 * skipped / total:.0f} % of frames skipped"
    elif counts["published"] and out_rate < 0.8 * expected:
        out_level, out_msg = warn, f"publishing at {out_rate:.1f} Hz, expected {expected:.1f}"
    else:
        out_level, out_msg = ok, "ok"
    hw = node.backend_label
    report = node.report
    stage_values = {f"{stage} p{q} [ms]": 1000 * v[f"p{q}"] for stage, v in stages.items() for q in (50, 95)}
    pairing = node.detection_pairing
    array = DiagnosticArray()
    array.header.stamp = node.get_clock().now().to_msg()
    array.status = [
        diagnostic_status(f"{name}/input", hw, in_level, in_msg, {
            "topic": topic, "lifecycle state": state, "image rate [Hz]": in_rate,
            "seconds since last image": since if since is not None else -1.0,
            "camera_info pairing": node._info_mode,
            "camera_info received": counts["camera_info_received"],
            "camera_info waits": node.info_pairing.waits,
            "frames without upstream detections": pairing.unanswered if pairing is not None else 0,
            **bad_inputs,
            # Not bad input: a confirmed new time base (tracks reset), and frames lost before the
            # node (camera, network, DDS reader queue), estimated from gaps in the stamps.
            "stamp_reset": counts.get("stamp_reset", 0),
            "frames lost before the node (estimated)": counts.get("dropped_upstream", 0)}),
        diagnostic_status(f"{name}/inference", hw, inf_level, inf_msg, {
            "backend": node.backend_label, "model": report.checkpoint if report else "",
            "body model": report.smpl_dir if report else "",
            "meaningless": report.meaningless if report else False,
            "host threads": report.host_threads if report else "", **node_errors, **stage_values}),
        diagnostic_status(f"{name}/output", hw, out_level, out_msg, {
            "publish rate [Hz]": out_rate, "people in last frame": node._people,
            "frames published": counts["published"], "frames skipped (stale)": counts["stale"],
            "frames skipped (overrun)": counts["overrun"], "enabled": node._enabled,
            "frames dropped while paused": counts["paused"]}),
    ]
    if getattr(node, "planner", None) is not None:     # world_frame: TF found, or the fallback's reason
        array.status.append(node.planner.status(name, hw))
    return array
