"""argparse types shared by the command line (:mod:`bplab.cli`) and the app's flags
(:mod:`bplab.ui.app`): one place for both, so neither imports the other for them."""

from __future__ import annotations

import argparse

__all__ = ["non_negative_int"]


def non_negative_int(text: str) -> int:
    """argparse type for counts (epochs, steps)."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, received {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, received {v}")
    return v
