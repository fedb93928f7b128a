"""The classic zero-cost proxies as network-level scalars, each as its paper defines it.

Where a reference implementation exists, the definition follows the foresight code of Abdelfattah
et al., "Zero-Cost Proxies for Lightweight NAS" (ICLR 2021), or the proxy's own released code;
deviations are listed in each docstring. Every proxy is a function of `ProxyInputs`, the products
of the probe's shared passes (`gm_lab.probe.probe`); `needs` names the optional products it reads
so the probe only runs what the requested proxies use. The two proxies that need a pass of
their own (synflow's float64 all-ones pass, MeCo's one-image pass) run it here on
`ProxyInputs.net`; helpers the probe calls inside its shared passes (GraSP's second-order term,
ZiCo's half-batch gradients, NASWOT's code kernel) live here too, next to their proxy.

snip, grad_norm, l2_norm, plain, fisher and flops are sums of the per-layer statistics
(`gm_lab.probe.statistics`) over the same conv/linear layers, computed from those vectors so the
two never disagree. A proxy that is undefined for a degenerate network (a singular matrix, a zero
distance) is NaN or ±inf, never an exception.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gm_lab.networks import count_parameters
from gm_lab.probe.patching import forwards_replaced

# Products of the shared passes a proxy can ask for.
PRODUCTS: frozenset[str] = frozenset({"relu_kernel", "jacobian", "grasp", "zen", "zico"})
JACOV_K = 1e-5  # jacob_cov and EPE-NAS regulariser (reference value)


@dataclass
class ProxyInputs:
    """What the probe hands each proxy: the network, its batch, statistics and pass products."""

    net: nn.Module  # at its seeded initialisation, train mode
    images: Tensor  # the real minibatch, in the probe's memory format
    labels: Tensor
    num_classes: int
    layer_stats: dict[str, np.ndarray]  # gm_lab.probe.statistics, one value per conv/linear layer
    relu_kernel: np.ndarray | None = None  # NASWOT K = Σ_ReLUs c cᵀ + (1-c)(1-c)ᵀ, float64 [B, B]
    jacobian: np.ndarray | None = None  # ∂Σlogits/∂x per sample, flattened, [B, 3·H·W]
    grasp: float | None = None  # -Σ W·Hg over conv/linear weights
    zico_halves: list[list[Tensor]] | None = None  # each half batch's share of the gradients
    zen_distance: float | None = None  # mean_n Σ|f(x) - f(x + αε)| over the pre-GAP features
    bn_running_var: np.ndarray | None = None  # mean running_var of each BN after the Zen passes


@dataclass(frozen=True)
class Proxy:
    """A registered proxy: name, the shared-pass products it reads, and its function."""

    name: str
    needs: frozenset[str]
    fn: Callable[[ProxyInputs], float]
    doc: str


PROXIES: dict[str, Proxy] = {}


def proxy(name: str, needs: str = "") -> Callable[[Callable[[ProxyInputs], float]], Proxy]:
    """Register the decorated function as proxy `name`; `needs` lists products (space separated)."""
    wanted = frozenset(needs.split())
    if wanted - PRODUCTS:
        raise ValueError(f"unknown product(s) {sorted(wanted - PRODUCTS)}")

    def register(fn: Callable[[ProxyInputs], float]) -> Proxy:
        if name in PROXIES:
            raise ValueError(f"proxy {name!r} is registered twice")
        PROXIES[name] = entry = Proxy(name, wanted, fn, (fn.__doc__ or "").strip())
        return entry

    return register


def list_proxies() -> list[str]:
    """Names of all registered proxies, in registration order."""
    return list(PROXIES)


def weighted_layers(net: nn.Module) -> list[nn.Module]:
    """Conv2d and Linear modules in module order: the layers every foresight measure scores."""
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def layer_sum(inputs: ProxyInputs, stat: str) -> float:
    """Sum over layers of a per-layer statistic (how the foresight measures reduce layers)."""
    return float(np.sum(inputs.layer_stats[stat]))


# ---- pure scoring functions (testable without a network) -------------------------------------


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


def naswot_score(kernel: np.ndarray) -> float:
    """log|K| (Mellor et al., "Neural Architecture Search without Training", ICML 2021).

    As the reference `hooklogdet`: the log of the absolute determinant from slogdet; -inf when
    K is singular (e.g. all codes equal).
    """
    _, logdet = np.linalg.slogdet(kernel)
    return float(logdet)


def jacov_score(jacobian: np.ndarray) -> float:
    """jacob_cov: -Σ_i [log(v_i + k) + 1/(v_i + k)] over the eigenvalues v of the per-sample
    input-Jacobian correlation matrix (Mellor et al. 2020 v1, as in foresight `jacob_cov`).

    eigvalsh replaces the reference's eig (the matrix is symmetric; same values, always real).
    NaN when a sample's Jacobian is constant (correlation undefined).
    """
    with np.errstate(all="ignore"):
        corrs = np.corrcoef(jacobian)
        if not np.all(np.isfinite(corrs)):
            return math.nan
        v = np.linalg.eigvalsh(corrs)
        return float(-np.sum(np.log(v + JACOV_K) + 1.0 / (v + JACOV_K)))


def epe_nas_score(jacobian: np.ndarray, labels: np.ndarray, num_classes: int) -> float:
    """EPE-NAS (Lopes et al., "EPE-NAS: Efficient Performance Estimation Without Training for
    Neural Architecture Search", ICANN 2021), as its reference `eval_score_perclass`.

    Per class c: s_c = Σ log(|corr(J_c)| + k) over the correlation matrix of that class's
    per-sample Jacobians (divided by its size when there are more than 100 classes). Score:
    Σ_c |s_c| for ≤ 100 classes, else Σ_c Σ_c' |s_c - s_c'| / #classes. As in the reference, a
    class with one sample gives corr = 1 (s_c ≈ 1e-5), and with > 100 classes it is skipped
    (the reference's `len()` of a scalar raises and the class is passed over).
    """
    labels = np.asarray(labels).reshape(-1)
    per_class: list[float] = []
    with np.errstate(all="ignore"):
        for c in np.unique(labels):
            rows = jacobian[labels == c]
            if rows.shape[0] == 1:
                if num_classes > 100:
                    continue
                corrs = np.corrcoef(rows[0])
            else:
                corrs = np.corrcoef(rows)
            s = float(np.sum(np.log(np.abs(corrs) + JACOV_K)))
            if num_classes > 100:
                s /= len(corrs)
            per_class.append(s)
        values = np.asarray(per_class, dtype=np.float64)
        if num_classes <= 100:
            return float(np.sum(np.abs(values)))
        if values.size == 0:
            return 0.0
        return float(np.sum(np.abs(values[:, None] - values[None, :])) / values.size)


def zen_score(distance: float, bn_running_var: np.ndarray) -> float:
    """log(mean_n Σ|f(x) - f(x+αε)|) + Σ_BN log sqrt(mean running_var) (Zen-NAS score)."""
    with np.errstate(all="ignore"):
        bn_term = float(np.sum(np.log(np.sqrt(bn_running_var))))
        return float(np.log(distance)) + bn_term


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


def zico_from_gradients(halves: list[list[Tensor]]) -> float:
    """ZiCo's reduction (reference `caculate_zico`): Σ_layers log Σ_θ mean|g_θ| / std(g_θ).

    Mean and population std are over the mini-batches; weights whose std is 0 are left out and
    a layer whose sum is 0 is skipped, as in the reference.
    """
    k = len(halves)
    score = 0.0
    for grads in zip(*halves, strict=True):
        if k == 2:  # mean|g| / std(g) = (|a| + |b|) / |a - b|: fewer passes
            mean_abs, std = grads[0].abs() + grads[1].abs(), (grads[0] - grads[1]).abs()
        else:
            mean = sum(grads) / k
            mean_abs = sum(g.abs() for g in grads) / k
            std = (sum((g - mean).pow(2) for g in grads) / k).sqrt()
        ratio = torch.where(std != 0, mean_abs / torch.where(std != 0, std, 1.0), 0.0)
        total = float(ratio.sum(dtype=torch.float64))
        if total != 0:
            score += math.log(total)
    return score


# ---- the proxies -------------------------------------------------------------------------------


@proxy("params")
def params(inputs: ProxyInputs) -> float:
    """Number of learnable parameters (BN affine parameters and biases included)."""
    return float(count_parameters(inputs.net))


@proxy("flops")
def flops(inputs: ProxyInputs) -> float:
    """Multiply-accumulates of all conv/linear layers for one sample, plus their bias additions
    (Σ macs_l, from the output shapes of the real forward): NATS-Bench's own `flop` count
    (xautodl), in units of 1, not millions. Pooling and BN are not counted, as there."""
    return layer_sum(inputs, "macs_l")


@proxy("grad_norm")
def grad_norm(inputs: ProxyInputs) -> float:
    """Σ_layers ‖∂L/∂W‖₂, cross-entropy on the batch (foresight `grad_norm`; Abdelfattah et al.)."""
    return layer_sum(inputs, "grad_norm_l")


@proxy("snip")
def snip(inputs: ProxyInputs) -> float:
    """Σ|W·∂L/∂W| (Lee et al., "SNIP: Single-shot Network Pruning", ICLR 2019; foresight `snip`)."""
    return layer_sum(inputs, "snip_l")


@proxy("grasp", needs="grasp")
def grasp(inputs: ProxyInputs) -> float:
    """-Σ W·(Hg), Hg = ∂(g·stopgrad(g))/∂W over conv/linear weights W (Wang et al., "Picking
    Winning Tickets Before Training by Preserving Gradient Flow", ICLR 2020; foresight `grasp`,
    T = 1, one iteration). Exact second-order value; see `grasp_by_invariance` for how the
    probe avoids most of the double backward.
    """
    if inputs.grasp is None:
        raise ValueError("grasp needs the probe's grasp product")
    return inputs.grasp


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


@proxy("fisher")
def fisher(inputs: ProxyInputs) -> float:
    """Σ_layers ½ Σ_c mean_n (Σ_hw A·dA)² (Theis et al., "Faster gaze prediction with dense
    networks and Fisher pruning", 2018; foresight `fisher` on conv/linear outputs)."""
    return layer_sum(inputs, "fisher_l")


@proxy("l2_norm")
def l2_norm(inputs: ProxyInputs) -> float:
    """Σ_layers ‖W‖₂ (foresight `l2_norm`, Abdelfattah et al. ICLR 2021)."""
    return layer_sum(inputs, "l2_norm_l")


@proxy("plain")
def plain(inputs: ProxyInputs) -> float:
    """Σ W·∂L/∂W (foresight `plain`, Abdelfattah et al. ICLR 2021)."""
    return layer_sum(inputs, "plain_l")


@proxy("synflow")
def synflow(inputs: ProxyInputs) -> float:
    """Σ|θ·∂R/∂θ| over conv/linear weights, R = Σ f_|θ|(1) (Tanaka et al., "Pruning neural
    networks without any data by iteratively conserving synaptic flow", NeurIPS 2020).

    As foresight `synflow`: a copy of the network with BatchNorm removed (bn=False), every
    parameter replaced by its absolute value, float64, one all-ones input of batch 1.
    """
    return synflow_score(inputs.net, tuple(inputs.images.shape[1:]))


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


def _batchnorm_bypassed(net: nn.Module) -> contextlib.AbstractContextManager[None]:
    """Every BatchNorm passes its input through, within the block (foresight builds the synflow
    network with bn=False)."""
    batchnorms = (m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))
    return forwards_replaced(batchnorms, lambda _bn: _identity)


def _identity(x: Tensor) -> Tensor:
    return x


@proxy("jacov", needs="jacobian")
def jacov(inputs: ProxyInputs) -> float:
    """jacob_cov (Mellor et al., "Neural Architecture Search without Training", arXiv v1 2020),
    as foresight computes it; see `jacov_score`."""
    if inputs.jacobian is None:
        raise ValueError("jacov needs the probe's jacobian product")
    return jacov_score(inputs.jacobian)


@proxy("naswot", needs="relu_kernel")
def naswot(inputs: ProxyInputs) -> float:
    """NASWOT (Mellor et al., ICML 2021): log|K| of the Hamming-similarity kernel of the binary
    ReLU codes of the batch, K = Σ c cᵀ + (1-c)(1-c)ᵀ, codes c = (input > 0) per sample.

    As the reference (`score_networks.py` of the NASWOT repo): every module whose type name
    contains "ReLU" adds its input's codes (in these networks that is each nn.ReLU and each
    ReLUConvBN, so a ReLUConvBN's input counts twice, as there), and only modules the backward
    visits count (ops whose output cannot reach the loss are left out). The codes come from the
    probe's shared train-mode forward; the reference's backward filter from its backward.
    """
    if inputs.relu_kernel is None:
        raise ValueError("naswot needs the probe's relu_kernel product")
    return naswot_score(inputs.relu_kernel)


@proxy("zen", needs="zen")
def zen(inputs: ProxyInputs) -> float:
    """Zen-score (Lin et al., "Zen-NAS: A Zero-Shot NAS for High-Performance Image Recognition",
    ICCV 2021): log E_n Σ|f(x) - f(x + αε)| + Σ_BN log sqrt(mean running_var), x, ε ~ N(0, 1),
    α = 0.01, f the pre-global-pooling feature map, train-mode BN with running statistics reset
    before the two forwards (the reference reads them after both).

    Deviations: the difference is the L1 distance per sample averaged over the batch, as the
    reference code computes it (the paper writes a norm); the network keeps its seeded
    initialisation instead of the reference's N(0, 1) re-initialisation, so Zen scores the same
    network as every other statistic and shares the probe's noise forward; one repeat, not 32.
    """
    if inputs.zen_distance is None or inputs.bn_running_var is None:
        raise ValueError("zen needs the probe's zen product")
    return zen_score(inputs.zen_distance, inputs.bn_running_var)


@proxy("meco")
def meco(inputs: ProxyInputs) -> float:
    """MeCo (Jiang et al., "MeCo: Zero-Shot NAS with One Data and Single Forward Pass via Minimum
    Eigenvalue of Correlation", NeurIPS 2023): Σ over modules of the smallest eigenvalue of the
    channel correlation matrix of the module's output feature map.

    As the reference NAS-Bench-201 script: one forward of one real image (the batch's first,
    batch size 1, train mode), a hook on every module (containers and the network itself
    included), corr = corrcoef of the C × (H·W) map with NaN/inf set to 0.
    """
    return meco_score(inputs.net, inputs.images[:1])


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
        if not isinstance(out, Tensor) or out.dim() < 2:
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


@proxy("zico", needs="zico")
def zico(inputs: ProxyInputs) -> float:
    """ZiCo (Li et al., "ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on Gradients",
    ICLR 2023): Σ_layers log Σ_θ mean|g_θ| / std(g_θ), statistics over 2 mini-batches (the
    batch's halves); see `zico_from_gradients`.

    Deviation: the halves' gradients are split out of the shared full-batch backward
    (`zico_halves`: each half's share of Σ_samples dA ⋆ x), so BN normalises with whole-batch
    statistics and couples the halves; the reference runs each mini-batch through its own
    forward and backward (`zico_score`, kept for comparison). On 14 random TSS archs the two
    agree within ~4% (Spearman 0.99) at a fifth of the cost.
    """
    if inputs.zico_halves is None:  # fewer than 2 samples
        return math.nan
    return zico_from_gradients(inputs.zico_halves)


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


def zico_score(net: nn.Module, images: Tensor, labels: Tensor) -> float:
    """ZiCo exactly as the reference: each half batch its own forward and backward."""
    n = images.shape[0]
    if n < 2:
        return math.nan
    weights = [m.weight for m in weighted_layers(net)]
    halves = []
    for part in (slice(0, n // 2), slice(n // 2, n)):
        loss = F.cross_entropy(net(images[part]), labels[part])
        grads = torch.autograd.grad(loss, weights, allow_unused=True, materialize_grads=True)
        halves.append([g.detach() for g in grads])
    return zico_from_gradients(halves)


@proxy("epe_nas", needs="jacobian")
def epe_nas(inputs: ProxyInputs) -> float:
    """EPE-NAS (Lopes et al. 2021) on the jacov Jacobian and the batch labels; see
    `epe_nas_score`."""
    if inputs.jacobian is None:
        raise ValueError("epe_nas needs the probe's jacobian product")
    return epe_nas_score(inputs.jacobian, inputs.labels.numpy(), inputs.num_classes)


PROXY_NAMES: tuple[str, ...] = tuple(PROXIES)
