"""The `meco` proxy, computed in the probe's shared passes (definition and deviations in
its docstring)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gm_lab.plugins import Need, ProxyContext, register_proxy
from gm_lab.plugins.deferred import nn, torch

if TYPE_CHECKING:
    from torch import Tensor


@register_proxy(
    "meco",
    needs=Need.FORWARD,
    products="",
    reference=(
        'Jiang et al., "MeCo: Zero-Shot NAS with One Data and Single Forward Pass via '
        'Minimum Eigenvalue of Correlation", NeurIPS 2023'
    ),
)
def meco(ctx: ProxyContext) -> float:
    """MeCo (Jiang et al., "MeCo: Zero-Shot NAS with One Data and Single Forward Pass via Minimum
    Eigenvalue of Correlation", NeurIPS 2023): Σ over modules of the smallest eigenvalue of the
    channel correlation matrix of the module's output feature map.

    As the reference NAS-Bench-201 script: one forward of one real image (the batch's first,
    batch size 1, train mode), a hook on every module (containers and the network itself
    included), corr = corrcoef of the C × (H·W) map with NaN/inf set to 0.
    """
    return meco_score(ctx.net, ctx.images[:1])


def meco_score(net: nn.Module, image: Tensor) -> float:
    """The MeCo pass: one forward of `image` (batch 1) with a hook on every module.

    Containers return their last child's tensor, so one feature map is often seen by several
    hooks: its correlation matrix is computed once and its eigenvalue counted once per hook. A
    map with one position per channel has an all-NaN correlation, zeroed by the reference, so
    its smallest eigenvalue is 0 and it is skipped.
    """
    corrs: list[Tensor] = []
    counts: list[int] = []
    seen: dict[tuple[int, int], tuple[Tensor, int]] = {}

    def hook(_module: nn.Module, _inp: tuple, out: object) -> None:
        if not isinstance(out, torch.Tensor) or out.dim() < 2:
            return
        key = (id(out), out._version)  # the version tells an in-place ReLU's result apart
        if key in seen:
            counts[seen[key][1]] += 1
            return
        feature = out[0].detach()
        feature = feature.reshape(feature.shape[0], -1) if feature.dim() else feature.reshape(1, 1)
        if feature.shape[1] < 2:
            return
        seen[key] = (out, len(corrs))
        corrs.append(torch.corrcoef(feature).reshape(feature.shape[0], feature.shape[0]))
        counts.append(1)

    handles = [m.register_forward_hook(hook) for m in net.modules()]
    try:
        with torch.no_grad():
            net(image)
    finally:
        for h in handles:
            h.remove()
    mins = min_eigenvalues(corrs)
    return float((mins * torch.tensor(counts, dtype=mins.dtype)).sum())


def min_eigenvalues(matrices: list[Tensor]) -> Tensor:
    """Smallest eigenvalue of each symmetric matrix, in input order (NaN/inf entries set to 0
    first, as MeCo does); batched by size so a few hundred matrices cost a few eigvalsh calls."""
    by_size: dict[int, list[int]] = {}
    for i, m in enumerate(matrices):
        by_size.setdefault(m.shape[0], []).append(i)
    mins = torch.zeros(len(matrices), dtype=torch.float64)
    for positions in by_size.values():
        stack = torch.stack([matrices[i] for i in positions]).double()
        stack = torch.nan_to_num(stack, nan=0.0, posinf=0.0, neginf=0.0)
        mins[positions] = torch.linalg.eigvalsh(stack)[:, 0]
    return mins
