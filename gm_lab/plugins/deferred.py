"""Torch for plug-in files, imported on first use.

The catalogue of plug-ins (names, needs, signs, references) must load without torch, so the
GP engine runs on cached tables, in a browser kernel or on a machine without torch. A proxy or
statistic file therefore writes ``from gm_lab.plugins.deferred import torch, nn, F`` and uses
them as usual inside its functions: the real module is imported the first time an attribute is
read, i.e. when the probe computes a value. Nothing is put in `sys.modules` before that.
"""

from __future__ import annotations

import importlib
import types
from typing import Any


class DeferredModule(types.ModuleType):
    """Stands for module `name`; the first attribute read imports it and forwards from then on."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.__dict__["_module"] = None

    def __getattr__(self, attr: str) -> Any:
        module = self.__dict__["_module"]
        if module is None:
            module = importlib.import_module(self.__name__)
            self.__dict__["_module"] = module
        return getattr(module, attr)


torch: Any = DeferredModule("torch")
nn: Any = DeferredModule("torch.nn")
F: Any = DeferredModule("torch.nn.functional")
