"""Offline training/evaluation tools for PARE (metrics, HumanData reader, augmentation, losses).

Kept free of heavy imports: import the submodules (``pare_training.metrics`` ...) directly.
"""
