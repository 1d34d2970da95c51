"""Matched PyTorch / MindSpore model pairs: ``examples.<name>_pt:build`` and ``examples.<name>_ms:build``."""
