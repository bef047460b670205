"""Launch pare_node (and optionally RViz).

    ros2 launch pare_ros pare.launch.py image:=/camera/color/image_raw \
        camera_info:=/camera/color/camera_info namespace:=front use_rviz:=true
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node


def generate_launch_description():
    share = get_package_share_directory("pare_ros")
    args = [
        DeclareLaunchArgument("image", default_value="image",
                              description="image topic (raw; the node adds /compressed itself "
                              "when image_transport is 'compressed')"),
        DeclareLaunchArgument("camera_info", default_value="camera_info",
                              description="CameraInfo topic matching the image"),
        DeclareLaunchArgument("namespace", default_value="", description="node namespace"),
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "pare.yaml"),
                              description="parameter file (uses /** so it works in any namespace)"),
        DeclareLaunchArgument("use_sim_time", default_value="false",
                              description="use /clock (bag replay)"),
        DeclareLaunchArgument("use_rviz", default_value="false", description="start RViz"),
        DeclareLaunchArgument("rviz_fixed_frame", default_value="camera_color_optical_frame",
                              description="RViz fixed frame (the camera's optical frame)"),
        DeclareLaunchArgument("log_level", default_value="info", description="node log level"),
    ]
    use_sim_time = PythonExpression(["'", LaunchConfiguration("use_sim_time"), "'.lower() == 'true'"])
    pare = Node(
        package="pare_ros",
        executable="pare_node",
        name="pare_node",
        namespace=LaunchConfiguration("namespace"),
        parameters=[LaunchConfiguration("params_file"), {"use_sim_time": use_sim_time}],
        remappings=[("image", LaunchConfiguration("image")),
                    ("image/compressed", [LaunchConfiguration("image"), "/compressed"]),
                    ("camera_info", LaunchConfiguration("camera_info"))],
        arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level")],
        output="screen",
        emulate_tty=True,
    )
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        name="rviz2",
        arguments=["-d", os.path.join(share, "rviz", "pare.rviz"),
                   "-f", LaunchConfiguration("rviz_fixed_frame")],
        parameters=[{"use_sim_time": use_sim_time}],
        condition=IfCondition(LaunchConfiguration("use_rviz")),
        output="screen",
    )
    return LaunchDescription(args + [pare, rviz])
