"""gm_lab's own proxies, one file each; importing this package registers them all.

A file here is a plug-in like any user's (gm_lab.plugins.register_proxy): its metadata
(needs, sign, reference) and its function. The classic proxies read the products of the
probe's shared passes (`products=`); the others are standalone and run their own passes on
`ctx.network()`. Files import torch through gm_lab.plugins.deferred, so this catalogue loads
without torch. Modules starting with "_" hold shared helpers and register nothing.
"""

from __future__ import annotations

import importlib
import pkgutil

for _module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
