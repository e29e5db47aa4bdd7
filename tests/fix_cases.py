"""Small projects and real findings shared by the engine's fix tests and the app's diagnosis
tests (tests/ is on sys.path through its conftest)."""

from __future__ import annotations

from bplab.diagnostics import ActivationStats, LayerStats, diagnose


def project(nodes, optimizer=None, training=None, output=None):
    net = {"nodes": nodes}
    if output:
        net["output"] = output
    p = {"format": "bplab-project", "version": 1, "dataset": {"name": "spiral"},
         "network": net, "loss": {"type": "cross_entropy"},
         "optimizer": optimizer if optimizer is not None else {"type": "sgd", "lr": 0.1}}
    if training is not None:
        p["training"] = training
    return p


DEEP_SIGMOID = [
    {"id": "in", "type": "Input", "shape": [2]},
    {"id": "fc1", "type": "Dense", "units": 16, "init": "xavier_uniform"},
    {"id": "s1", "type": "Sigmoid"},
    {"id": "fc2", "type": "Dense", "units": 16},
    {"id": "s2", "type": "Sigmoid"},
    {"id": "fc3", "type": "Dense", "units": 16, "init": "he_normal"},
    {"id": "t3", "type": "Tanh"},
    {"id": "out", "type": "Dense", "units": 2},
]


def vanishing_findings():
    """What ``diagnose`` says of DEEP_SIGMOID when its first layers' gradients fade."""
    types = {n["id"]: n["type"] for n in DEEP_SIGMOID}
    names = ["fc1", "fc2", "fc3", "out"]
    history = []
    for k in range(5):
        rms = [1e-7 * (1 + k), 1e-5, 1e-3, 1e-1]
        history.append([LayerStats(n, "Dense", i, r * 16, 4.0, 1e-3, r)
                        for i, (n, r) in enumerate(zip(names, rms))])
    return diagnose(history, layer_types=types)


def dead_relu_findings():
    acts = [[ActivationStats("r1", "relu", 0.0, 0.1, 0.9, 0.0),
             ActivationStats("r2", "relu", 0.3, 0.5, 0.1, 0.0)] for _ in range(5)]
    return diagnose([], acts)
