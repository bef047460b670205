"""Launch pare_node (and optionally RViz).

    ros2 launch pare_ros pare.launch.py image:=/camera/color/image_raw \
        camera_info:=/camera/color/camera_info namespace:=front use_rviz:=true \
        image_transport:=compressed backend:=onnxruntime detector:=yolo log_level:=debug

pare_node is a lifecycle node; with ``autostart:=true`` (default) it configures and activates
itself, so a plain Node action is enough. ``autostart:=false`` leaves it unconfigured for a
lifecycle manager (e.g. nav2_lifecycle_manager or ``ros2 lifecycle set``).

The settings users change first (backend, device, detector, model_dir, image_transport,
publish_debug_image) are launch arguments; an empty value keeps the parameter file's value.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

#: launch argument → node parameter, passed only when the argument is not empty.
OVERRIDES = {
    "backend": "backend",
    "device": "device",
    "detector": "detector.kind",
    "model_dir": "model.dir",
    "image_transport": "image_transport",
    "publish_debug_image": "publish_debug_image",
    "world_frame": "world_frame",
}
#: the RViz config's (absolute, un-namespaced) topics of the node.
RVIZ_TOPICS = ("/pare_node/markers", "/pare_node/debug_image", "/pare_node/body_points",
               "/pare_node/planner_markers", "/pare_node/forecast_points")
BOOLEAN = {"publish_debug_image"}


def _true(text: str) -> bool:
    return text.strip().lower() in ("true", "1", "yes", "on")


def _namespace(text: str) -> str:
    """'' | 'front' | '/front/' → '' | '/front'."""
    text = text.strip().strip("/")
    return f"/{text}" if text else ""


def _launch_nodes(context):
    value = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    namespace = _namespace(value("namespace"))
    use_sim_time = _true(value("use_sim_time"))
    overrides = {param: (_true(value(arg)) if arg in BOOLEAN else value(arg))
                 for arg, param in OVERRIDES.items() if value(arg) != ""}
    share = get_package_share_directory("pare_ros")
    nodes = [Node(
        package="pare_ros",
        executable="pare_node",
        name="pare_node",
        namespace=namespace,
        parameters=[value("params_file"),
                    {"use_sim_time": use_sim_time, "autostart": _true(value("autostart")), **overrides}],
        # The node derives <image>/compressed from the resolved image topic itself
        # (image_transport's convention), so remapping 'image' is enough for both transports.
        remappings=[("image", value("image")), ("camera_info", value("camera_info"))],
        ros_arguments=["--log-level", value("log_level")],
        output="screen",
        emulate_tty=True,
    )]
    if _true(value("use_rviz")):
        nodes.append(Node(
            package="rviz2",
            executable="rviz2",
            name="rviz2",
            # RViz's fixed frame: the tracking frame when one is set (people, velocity arrows and
            # forecast paths are published in it), else the camera's optical frame.
            arguments=["-d", os.path.join(share, "rviz", "pare.rviz"), "-f",
                       value("rviz_fixed_frame") or value("world_frame") or "camera_color_optical_frame"],
            parameters=[{"use_sim_time": use_sim_time}],
            # pare.rviz names the un-namespaced topics; follow the node into its namespace.
            remappings=[(topic, namespace + topic) for topic in RVIZ_TOPICS] if namespace else [],
            output="screen",
        ))
    return nodes


def generate_launch_description():
    share = get_package_share_directory("pare_ros")
    args = [
        DeclareLaunchArgument("image", default_value="image",
                              description="image topic (raw; with image_transport 'compressed' the node "
                              "subscribes to <image>/compressed)"),
        DeclareLaunchArgument("camera_info", default_value="camera_info",
                              description="CameraInfo topic matching the image"),
        DeclareLaunchArgument("namespace", default_value="", description="node namespace"),
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "pare.yaml"),
                              description="parameter file (uses /** so it works in any namespace)"),
        DeclareLaunchArgument("autostart", default_value="true",
                              description="configure and activate at start-up (false: wait for a "
                              "lifecycle manager)"),
        DeclareLaunchArgument("image_transport", default_value="", description="raw | compressed"),
        DeclareLaunchArgument("backend", default_value="",
                              description="auto | tensorrt | torch-cuda | onnxruntime | torch-cpu"),
        DeclareLaunchArgument("device", default_value="", description="cpu | cuda | cuda:N"),
        DeclareLaunchArgument("detector", default_value="",
                              description="detector.kind: hog | yolo | full_frame | fixed | topic"),
        DeclareLaunchArgument("model_dir", default_value="", description="model directory (model.dir)"),
        DeclareLaunchArgument("publish_debug_image", default_value="",
                              description="mesh overlay on ~/debug_image (RViz's debug image display "
                              "is off by default, like this parameter)"),
        DeclareLaunchArgument("use_sim_time", default_value="false",
                              description="use /clock (bag replay)"),
        DeclareLaunchArgument("use_rviz", default_value="false", description="start RViz"),
        DeclareLaunchArgument("world_frame", default_value="",
                              description="fixed frame to track people in (odom, map; world_frame)"),
        DeclareLaunchArgument("rviz_fixed_frame", default_value="",
                              description="RViz fixed frame (default: world_frame if set, else "
                              "camera_color_optical_frame)"),
        DeclareLaunchArgument("log_level", default_value="info",
                              description="node log level (debug | info | warn | error)"),
    ]
    return LaunchDescription(args + [OpaqueFunction(function=_launch_nodes)])
