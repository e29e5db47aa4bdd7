"""RNN, LSTM and GRU against torch.nn in float64: equations, truncated BPTT, training, loading.

(Forward and gradients of each layer case are compared in test_layers_torch.py, which builds
its torch modules for the recurrent cases with :func:`torch_sequence_module`.)
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

pytestmark = pytest.mark.torch

_TORCH = {"RNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}


def _batch_first(base):
    class Seq(base):
        """nn.RNN/LSTM/GRU returning bplab's output: the last step, or every step."""

        def __init__(self, *args, return_sequences=False, **kwargs):
            super().__init__(*args, batch_first=True, **kwargs)
            self.return_sequences = return_sequences

        def forward(self, x, bptt_steps=None):
            if not bptt_steps:
                out = super().forward(x)[0]
            else:  # truncated BPTT: detach the state every bptt_steps steps
                outs, state = [], None
                for s in range(0, x.shape[1], bptt_steps):
                    if state is not None:
                        state = tuple(v.detach() for v in state) if isinstance(state, tuple) \
                            else state.detach()
                    o, state = super().forward(x[:, s:s + bptt_steps], state)
                    outs.append(o)
                out = torch.cat(outs, dim=1)
            return out if self.return_sequences else out[:, -1]

    return Seq


SEQ = {name: _batch_first(cls) for name, cls in _TORCH.items()}


def torch_sequence_module(type_name: str, cfg: dict, in_shape) -> nn.Module:
    """The torch module of a bplab sequence layer (RNN, LSTM, GRU, or Dense on a sequence)."""
    if type_name == "Dense":
        return nn.Linear(in_shape[-1], cfg["units"], bias=cfg.get("bias", True)).double()
    extra = {"nonlinearity": cfg.get("nonlinearity", "tanh")} if type_name == "RNN" else {}
    return SEQ[type_name](in_shape[-1], cfg["hidden_size"], bias=cfg.get("bias", True),
                          return_sequences=cfg.get("return_sequences", False),
                          **extra).double()
