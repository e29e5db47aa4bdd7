"""The bplab desktop application (PySide6). Listens to the engine; never computes gradients."""
