"""Node ids: what a name may be, and the fresh name a new node gets.

A node id names the layer everywhere: its parameters are ``"<id>.<param>"`` in exports,
plots and optimiser state, so ``.`` is out; identifier-like ids also read well in the
generated PyTorch code. New nodes are numbered after their layer's ``id_prefix``
(``fc1``, ``fc2`` for Dense, ``relu1`` for ReLU, ``in`` for the Input), whoever adds them:
the editor, a paste, or a diagnosis fix.

>>> new_id("Dense", {"in", "fc1"})
'fc2'
>>> id_problem("9lives")
"'9lives' starts with a digit: a name starts with a letter or _."
"""

from __future__ import annotations

import re
from collections.abc import Collection

from bplab.layers import LAYERS

__all__ = ["ID_MAX_LEN", "id_prefix", "id_problem", "new_id"]

_ID_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
ID_MAX_LEN = 64


def id_prefix(type_name: str) -> str:
    """The layer's ``id_prefix`` (``fc`` for Dense, ``conv`` for Conv2D), else its type name
    in lower case without a trailing ``2D`` (``relu`` for ReLU)."""
    cls = LAYERS.get(type_name)
    if cls is not None and cls.id_prefix:
        return cls.id_prefix
    base = re.sub(r"\d+d$", "", type_name.lower())
    return re.sub(r"[^a-z0-9_]", "", base) or "node"


def new_id(type_name: str, used: Collection[str]) -> str:
    """The first of ``<prefix>1``, ``<prefix>2``, ... not in ``used``; the Input takes its bare
    prefix (``in``) when that is free."""
    prefix = id_prefix(type_name)
    cls = LAYERS.get(type_name)
    if cls is not None and cls.arity == 0 and prefix not in used:
        return prefix
    i = 1
    while f"{prefix}{i}" in used:
        i += 1
    return f"{prefix}{i}"


def id_problem(name: str) -> str | None:
    """Why ``name`` cannot be a node id (letters, digits, ``_``; not starting with a digit),
    or None if it can. Uniqueness is the caller's question (it knows the other ids)."""
    if not name:
        return "A node needs a name."
    if len(name) > ID_MAX_LEN:
        return f"A name has at most {ID_MAX_LEN} characters, received {len(name)}."
    if not _ID_RE.fullmatch(name):
        bad = next((c for c in name if not (c.isascii() and (c.isalnum() or c == "_"))), None)
        if bad is None:
            return f"{name!r} starts with a digit: a name starts with a letter or _."
        why = " (it separates a layer from its parameters, as in fc1.weight)" if bad == "." \
            else ""
        return (f"{name!r} contains {bad!r}{why}: use letters, digits and _, "
                "starting with a letter or _.")
    return None
