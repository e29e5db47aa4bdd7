"""PyTorch eager on the same network, weights and batches (``torch-cpu`` / ``torch-cuda``).

The model is built from :data:`bplab.io.torch_layers.TORCH_LAYERS`, the table the code
exporter writes its ``.py`` files from: the benchmark trains what an export would run.
"""

from __future__ import annotations

import time

import numpy as np

from bplab.bench.contenders.base import Contender
from bplab.bench.workloads import Workload
from bplab.datasets.base import Dataset
from bplab.graph.plan import analyze
from bplab.io.torch_layers import torch_call


def torch_model(nodes: list, torch, dtype=None):
    """An nn.Module running the node list as bplab does (chains and merges), each layer
    translated by the code exporter's table; submodules under ``mods[node id]``."""
    nn = torch.nn
    plan = analyze({"nodes": nodes})
    dtype = dtype or torch.float32

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.order = [n for n in plan.order if plan.nodes[n].type != "Input"]
            self.srcs = {n: plan.nodes[n].inputs for n in self.order}
            self.mods = nn.ModuleDict()
            for nid in self.order:
                node = plan.nodes[nid]
                call = torch_call(node.type, plan.configs[nid],
                                  [plan.shapes[s] for s in node.inputs], plan.shapes[nid])
                self.mods[nid] = call.build(torch, dtype)

        def forward(self, x):
            outs = {plan.input_id: x}
            for nid in self.order:
                ins = self.srcs[nid]
                module = self.mods[nid]
                if len(ins) == 1:
                    outs[nid] = module(outs[ins[0]])
                else:
                    outs[nid] = module(*[outs[s] for s in ins])
            return outs[self.order[-1]]

    return Net()


class TorchContender(Contender):
    def __init__(self, w: Workload, ds: Dataset, batch: int, state: dict[str, np.ndarray],
                 device: str):
        import torch
        import torch.nn.functional as F  # noqa: N812  (torch's own spelling)

        self.torch = torch
        self.device = device
        self.name = f"torch-{device}"
        model = torch_model(w.nodes, torch)
        with torch.no_grad():
            for name, value in state.items():
                nid, pname = name.rsplit(".", 1)
                getattr(model.mods[nid], pname).copy_(torch.from_numpy(np.asarray(value)))
        self.model = model.to(device).train()
        spec = w.optimizer
        if spec["type"] == "adam":
            self.opt = torch.optim.Adam(self.model.parameters(), lr=spec["lr"])
        else:
            self.opt = torch.optim.SGD(self.model.parameters(), lr=spec["lr"],
                                       momentum=spec.get("momentum", 0.0))
        self.loss_fn = {"mse": F.mse_loss}.get(w.loss, F.cross_entropy)
        self.x = torch.from_numpy(ds.x_train).to(device)
        self.y = torch.from_numpy(ds.y_train).to(device)
        self.batch = batch
        self.rng = np.random.default_rng(0)  # the Trainer's batch order
        self.xs, self.ys = torch.empty_like(self.x), torch.empty_like(self.y)
        self.pos = 0
        self._loss_t = None

    def _sync(self):
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def run(self, n: int) -> float:
        torch = self.torch
        model, opt, loss_fn = self.model, self.opt, self.loss_fn
        total = len(self.x)
        self._sync()
        t0 = time.perf_counter()
        for _ in range(n):
            if self.pos == 0:
                idx = torch.from_numpy(self.rng.permutation(total)).to(self.x.device)
                torch.index_select(self.x, 0, idx, out=self.xs)
                torch.index_select(self.y, 0, idx, out=self.ys)
            s = self.pos
            self.pos = 0 if s + self.batch >= total else s + self.batch
            xb, yb = self.xs[s:s + self.batch], self.ys[s:s + self.batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
        self._sync()
        dt = time.perf_counter() - t0
        self._loss_t = loss
        return dt

    def loss(self) -> float:
        return self._loss_t.item()
