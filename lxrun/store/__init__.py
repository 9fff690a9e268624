"""Layers, stacks and their builds, on disk below a Layout."""
