"""ROS 2 layer of pare_ros.

The modules here are pure building blocks (message ⇄ NumPy conversions, TF, markers, the
SmplBody messages, statistics) that the node calls; none of them creates a node or spins, so
they are unit-testable without DDS. Nothing is imported here on purpose: importing
``pare_ros.ros`` must not pull in rclpy or any message package.
"""
