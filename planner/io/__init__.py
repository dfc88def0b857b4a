"""Edges: plan files, exports."""
