"""MeCo_opt: MeCo with the correlation matrix of 8 randomly sampled channels per module.

Jiang et al., "MeCo: Zero-Shot NAS with One Data and Single Forward Pass via Minimum Eigenvalue
of Correlation", NeurIPS 2023; official code HamsterMimi/MeCo, `correlation/NAS_Bench_201.py`
(`get_score(..., measure='meco_opt')`). One forward pass of one image (batch 1, network in train
mode, no labels, no gradients) with a forward hook on every module (`named_modules()`: leaves,
containers and the network itself). In each hook, the first sample of the output is read as a
C × (H·W) matrix, 8 of its C channels are drawn at random without replacement, their 8 × 8
Pearson correlation matrix gets NaN/inf entries set to 0, and the hook contributes
λ_min(corr) · C / 8. MeCo_opt = Σ over hooks, NaN/inf terms dropped. A feature map seen by
several hooks (a container returns its last child's tensor) is counted once per hook, each time
with its own draw of channels, as in the reference.

Deviations from the official code:
- Channels are drawn by `torch.randperm` from a `torch.Generator` seeded with `ctx.seed`, one draw
  per hook in forward order; the reference draws with Python's global `random.sample`, which its
  script never seeds, so its values are not reproducible run to run.
- The image is the first of the probe's real minibatch (`ctx.images[:1]`, the test split), as
  for our `meco`; the reference takes the first image of a shuffled CIFAR training loader.
- λ_min from `torch.linalg.eigvalsh` in float64 (the matrix is symmetric); the reference takes
  the smallest real part of `torch.linalg.eig` in float32. Same value up to rounding.
- A module output with fewer than 8 channels uses all its channels (scale C / C = 1); the
  reference's `random.sample` raises there. No TSS or SSS module output has fewer than 8.
- An output with one position per channel (the pooled features, the logits) has an all-NaN,
  hence all-zero, correlation matrix whose λ_min is 0: it is skipped without a draw (the
  reference draws and adds 0).
- The network is whatever `ctx.network()` builds (gm_lab's own NATS-Bench networks at their
  seeded PyTorch-default initialisation); the reference builds foresight's `nasbench2` model,
  also at PyTorch's default initialisation (`--init_w_type none`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gm_lab.plugins import Need, ProxyContext, register_proxy
from gm_lab.plugins.deferred import nn, torch
from gm_lab.proxies.meco import min_eigenvalues

if TYPE_CHECKING:
    from torch import Generator, Tensor

SAMPLED_CHANNELS = 8  # reference value (`random.sample(range(n), 8)`)


@register_proxy(
    "meco_opt",
    needs=Need.FORWARD,
    reference=(
        'Jiang et al., "MeCo: Zero-Shot NAS with One Data and Single Forward Pass via '
        'Minimum Eigenvalue of Correlation", NeurIPS 2023; code HamsterMimi/MeCo (meco_opt)'
    ),
)
def meco_opt(ctx: ProxyContext) -> float:
    """MeCo_opt: Σ over modules of λ_min of the correlation of 8 random channels of the module's
    output on one image, times C/8 (Jiang et al., NeurIPS 2023).

    One forward of the batch's first image, train mode, channels drawn with a generator seeded
    by `ctx.seed`; definition and deviations from the official code in the module docstring.
    """
    generator = torch.Generator().manual_seed(int(ctx.seed))
    image = ctx.images[:1].contiguous()
    return meco_opt_score(ctx.network(), image, generator)


def meco_opt_score(
    net: nn.Module, image: Tensor, generator: Generator, channels: int = SAMPLED_CHANNELS
) -> float:
    """The MeCo_opt pass on `net`: one forward of `image` (batch 1) with a hook on every module.

    Each hook draws `channels` of the C channels of sample 0 of its output (without
    replacement, from `generator`), and adds λ_min(corr of those rows) · C / `channels`.
    """
    corrs: list[Tensor] = []
    scales: list[float] = []

    def hook(_module: nn.Module, _inp: tuple, out: object) -> None:
        if not isinstance(out, torch.Tensor) or out.dim() < 2:
            return
        feature = out[0].detach()
        n = feature.shape[0]
        feature = feature.reshape(n, -1)
        if feature.shape[1] < 2:  # all-NaN correlation, zeroed: λ_min = 0
            return
        k = min(channels, n)
        picked = torch.randperm(n, generator=generator)[:k]
        corrs.append(torch.corrcoef(feature[picked]).reshape(k, k))
        scales.append(n / k)

    handles = [m.register_forward_hook(hook) for m in net.modules()]
    try:
        with torch.no_grad():
            net(image)
    finally:
        for h in handles:
            h.remove()
    if not corrs:
        return 0.0
    terms = min_eigenvalues(corrs) * torch.tensor(scales, dtype=torch.float64)
    return float(terms[torch.isfinite(terms)].sum())
