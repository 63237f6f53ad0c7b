"""Storing: files a kill cannot half-write, and checkpoints checked before they are read."""
