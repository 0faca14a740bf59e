"""The node wiring: one `Node` per process, its branches, its apply loop and write path."""
