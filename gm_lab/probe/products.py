"""Products of the probe's shared passes that proxies read (gm_lab.proxies declares which).

Computed inside the passes of gm_lab.probe.probe, once per network: NASWOT's ReLU code kernel
(during the real forward), GraSP's -θ·Hg (exact, or mostly in closed form), and ZiCo's two
half-batch gradients (split out of the shared backward). Each is next to nothing without the
pass it rides on, which is why they live here and not in the proxies' own files.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def relu_code_kernel(pre_activation: Tensor) -> Tensor:
    """One ReLU's NASWOT term c cᵀ + (1-c)(1-c)ᵀ, c the binary codes (x > 0) per sample.

    Uses (1-c)(1-c)ᵀ = D - s_i - s_j + c cᵀ (s the row sums, D the code length): one matmul.
    Exact: 0/1 products summed in float32 are exact below 2^24 units per layer, so the order
    of a sample's code positions does not matter: a channels_last map is read as it lies in
    memory (N, H, W, C), without a copy.
    """
    pre = pre_activation.detach()
    if pre.dim() == 4 and pre.is_contiguous(memory_format=torch.channels_last):
        pre = pre.permute(0, 2, 3, 1)
    # Compare straight into float32: a bool tensor's conversion costs ten times the compare.
    codes = torch.gt(pre, 0, out=torch.empty(pre.shape, dtype=torch.float32))
    codes = codes.reshape(pre.shape[0], -1)
    same_on = (codes @ codes.T).double()
    on = codes.sum(1).double()
    return codes.shape[1] - on[:, None] - on[None, :] + 2 * same_on


def grasp_exact(weights: list[Tensor], grads: list[Tensor]) -> float:
    """-Σ W·Hg by double backward, `grads` built with create_graph (foresight's procedure)."""
    z = sum(((g.detach() * g).sum() for g in grads if g.requires_grad), torch.zeros(()))
    if not z.requires_grad:
        return 0.0
    hg = torch.autograd.grad(z, weights, allow_unused=True, materialize_grads=True)
    with torch.no_grad():
        return float(-sum((w * h).sum() for w, h in zip(weights, hg, strict=True)))


def grasp_by_invariance(
    loss: Tensor,
    weights: list[Tensor],
    grads: list[Tensor],
    bn_fed: list[bool],
    graph_grads: Sequence[Tensor | None] | None = None,
) -> float:
    """GraSP's -Σ_l W_l·(Hg)_l = -gᵀHv (v: the weights themselves), mostly in closed form.

    A layer l whose output only feeds a train-mode BatchNorm leaves the loss unchanged when
    W_l is scaled: L(cW_l) = L(W_l). Differentiating ∇L(cW_l) at c = 1 gives H v_l = -∇_l L
    on block l and 0 elsewhere, so its GraSP term -gᵀH v_l is exactly ‖g_l‖² (up to BN's ε,
    relative error ≈ ε / Var(output) ≈ 1e-4). Only the other layers (the classifier, the ResNet
    shortcut convs) need a second-order pass: -gᵀH v_N = -g·∇_θ s with
    s = Σ_{l∈N} ∇_{W_l}L · stopgrad(W_l), whose double backward only runs through the graph
    downstream of those layers. A layer is treated as invariant only if it is BN-fed AND its
    W·g ≈ 0 (the Euler identity invariance implies), so a misdetected layer falls back to the
    exact path. `graph_grads`: ∇_{W_l}L with a graph from the shared backward, None where it
    has none (`gm_lab.probe.backward_split`); when every layer of N has one they are s's
    terms, else one more create_graph backward computes them. Tested against `grasp_exact`.
    """
    invariant = []
    for w, g, fed in zip(weights, grads, bn_fed, strict=True):
        wg, scale = float((w.detach() * g).sum()), float(w.detach().norm() * g.norm())
        invariant.append(fed and abs(wg) <= 1e-3 * scale)
    with torch.no_grad():
        closed = sum(float(g.pow(2).sum()) for g, inv in zip(grads, invariant, strict=True) if inv)
    rest = [i for i, inv in enumerate(invariant) if not inv]
    if not rest:
        return closed
    g_rest = [graph_grads[i] for i in rest] if graph_grads is not None else []
    if not g_rest or any(g is None for g in g_rest):
        g_rest = torch.autograd.grad(
            loss,
            [weights[i] for i in rest],
            create_graph=True,
            retain_graph=True,
            allow_unused=True,
            materialize_grads=True,
        )
    s = sum(
        (
            (gr * weights[i].detach()).sum()
            for gr, i in zip(g_rest, rest, strict=True)
            if gr.requires_grad
        ),
        torch.zeros(()),
    )
    if not s.requires_grad:
        return closed
    hv = torch.autograd.grad(s, weights, allow_unused=True, materialize_grads=True)
    with torch.no_grad():
        return closed - float(sum((g * h).sum() for g, h in zip(grads, hv, strict=True)))


def zico_halves(
    modules: list[nn.Module], inputs: list[Tensor], output_grads: list[Tensor], grads: list[Tensor]
) -> list[list[Tensor]] | None:
    """Weight gradients of the batch's two halves, split out of the shared backward.

    A conv/linear weight gradient is a sum over samples of (output gradient ⋆ input); the first
    half's part is that sum over its samples (one weight-only convolution backward per layer),
    the second's the remainder. None below 2 samples.
    """
    n = output_grads[0].shape[0] if output_grads else 0
    h = n // 2
    if h == 0:
        return None
    first = []
    with torch.no_grad():
        for module, x, d in zip(modules, inputs, output_grads, strict=True):
            if isinstance(module, nn.Conv2d):
                first.append(
                    torch.nn.grad.conv2d_weight(
                        x[:h],
                        module.weight.shape,
                        d[:h],
                        module.stride,
                        module.padding,
                        module.dilation,
                        module.groups,
                    )
                )
            else:
                first.append(d[:h].reshape(-1, d.shape[-1]).T @ x[:h].reshape(-1, x.shape[-1]))
    second = [g - f for g, f in zip(grads, first, strict=True)]
    return [first, second]
