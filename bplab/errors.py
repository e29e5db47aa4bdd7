"""Exceptions that carry a message meant for the person using bplab."""

from __future__ import annotations

from dataclasses import dataclass


class BplabError(Exception):
    """Base class: the message is a complete sentence a user can act on."""


class ConfigError(BplabError, ValueError):
    """A layer, loss, optimizer or project setting has a bad value."""


class ShapeError(BplabError, ValueError):
    """A layer cannot take the shape it is given."""


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One thing wrong with a network, attached to the node it concerns (None: the graph)."""

    node: str | None
    message: str

    def __str__(self) -> str:
        return self.message


class NetworkError(BplabError, ValueError):
    """A network spec that cannot be built. ``problems`` lists every issue found."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(p.message for p in self.problems))


class DivergenceError(BplabError, FloatingPointError):
    """Training produced a non-finite loss or gradient."""
