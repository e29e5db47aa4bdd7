"""What every contender offers the measuring loop."""

from __future__ import annotations


class Contender:
    """Something that trains: ``run(n)`` takes n steps and returns the seconds they took."""

    name = ""
    device = "cpu"

    def run(self, n: int) -> float:
        raise NotImplementedError

    def loss(self) -> float:
        """The batch loss of the last step."""
        raise NotImplementedError
