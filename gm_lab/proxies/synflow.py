"""The `synflow` proxy, computed in the probe's shared passes (definition and deviations in
its docstring)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from gm_lab.plugins import Need, ProxyContext, register_proxy
from gm_lab.plugins.deferred import nn, torch
from gm_lab.proxies._common import weighted_layers

if TYPE_CHECKING:
    from torch import Tensor


@register_proxy(
    "synflow",
    needs=Need.NETWORK,
    products="",
    reference=(
        'Tanaka et al., "Pruning neural networks without any data by iteratively '
        'conserving synaptic flow", NeurIPS 2020'
    ),
)
def synflow(ctx: ProxyContext) -> float:
    """Σ|θ·∂R/∂θ| over conv/linear weights, R = Σ f_|θ|(1) (Tanaka et al., "Pruning neural
    networks without any data by iteratively conserving synaptic flow", NeurIPS 2020).

    As foresight `synflow`: a copy of the network with BatchNorm removed (bn=False), every
    parameter replaced by its absolute value, float64, one all-ones input of batch 1.
    """
    return synflow_score(ctx.net, tuple(ctx.images.shape[1:]))


def synflow_score(net: nn.Module, input_shape: tuple[int, ...]) -> float:
    """The synflow pass itself: `net` run by `torch.func.functional_call` on float64 copies of
    its tensors' absolute values, its BatchNorms bypassed (the module is left as it was; no
    deep copy of the network, which cost half of the pass)."""
    originals = dict((*net.named_parameters(), *net.named_buffers()))  # tied ones once
    state = {
        name: t.detach().abs().to(torch.float64, memory_format=torch.contiguous_format)
        if t.is_floating_point()
        else t
        for name, t in originals.items()
    }
    copy_of = {id(originals[name]): state[name] for name in originals}
    layers = weighted_layers(net)
    if any(id(m.weight) not in copy_of for m in layers):  # e.g. a parametrized weight
        raise ValueError("synflow reads conv/linear weights that are the network's own tensors")
    weights = [copy_of[id(m.weight)].requires_grad_(True) for m in layers]
    ones = torch.ones((1, *input_shape), dtype=torch.float64)
    with _batchnorm_bypassed(net):
        out = torch.func.functional_call(net, state, (ones,))
    grads = torch.autograd.grad(out.sum(), weights, allow_unused=True, materialize_grads=True)
    with torch.no_grad():
        return float(
            sum(torch.linalg.vector_norm(w * g, ord=1) for w, g in zip(weights, grads, strict=True))
        )


def _batchnorm_bypassed(net: nn.Module) -> AbstractContextManager[None]:
    """Every BatchNorm passes its input through, within the block (foresight builds the synflow
    network with bn=False)."""
    from gm_lab.probe.patching import forwards_replaced  # torch-side; imported when it runs

    kinds = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
    batchnorms = (m for m in net.modules() if isinstance(m, kinds))
    return forwards_replaced(batchnorms, lambda _bn: _identity)


def _identity(x: Tensor) -> Tensor:
    return x
