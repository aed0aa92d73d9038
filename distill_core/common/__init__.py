"""Plumbing shared by every algorithm: devices, seeding, paths, checkpoints."""
