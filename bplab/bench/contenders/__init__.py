"""The contenders: things that train a workload and say how long n steps took.

* :mod:`.bplab_engine`: ``bplab-numpy`` / ``bplab-cupy`` (``Trainer.step``) and the engine core;
* :mod:`.numpy_ref`: ``numpy-ref``, hand-written numpy loops (MLP and CNN);
* :mod:`.torch_ref`: ``torch-cpu`` / ``torch-cuda``, PyTorch eager.
"""

from bplab.bench.contenders.base import Contender
from bplab.bench.contenders.bplab_engine import BplabContender, EngineCore
from bplab.bench.contenders.numpy_ref import NumpyCNN, NumpyMLP
from bplab.bench.contenders.torch_ref import TorchContender, torch_model

__all__ = ["BplabContender", "Contender", "EngineCore", "NumpyCNN", "NumpyMLP",
           "TorchContender", "torch_model"]
