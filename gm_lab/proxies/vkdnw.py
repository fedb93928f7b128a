"""VKDNW and VKDNW_single: the entropy of the deciles of the Fisher-information spectrum of a
subset of the weights, alone and added to ℵ, the number of parameter tensors.

Týbl & Neumann, "Training-free Neural Architecture Search through Variance of Knowledge of Deep
Network Weights", CVPR 2025, arXiv 2502.04975; official code ondratybl/VKDNW,
`NB201/ZeroShotProxy/compute_vkdnw_score.py` (`compute_nas_score`, `get_fisher`,
`get_jacobian_index`, `cholesky_covariance`) run by `NB201/tss_general_.py` (in the repository's
history up to commit 19cad2f; the "prepare" commit 2b67433 deleted the script).

The official NB201 procedure, which this file follows:
1. Re-initialise the network (`init_model(..., 'kaiming_norm_fanin')`): Conv2d and Linear weights
   Kaiming-normal (fan_in, ReLU gain), their biases 0; affine BatchNorm/GroupNorm weight 1,
   bias 0. BN running statistics are left as they are (a fresh network: mean 0, variance 1).
2. Input: `torch.randn(64, 3, R, R)`, Gaussian noise, not images (`tss_general_.py` without
   `--real_input`, the default: 'vkdnw' is not in `real_input_metrics`); batch 64
   (`--batch_size` default), R the dataset's resolution (32, or 16 for ImageNet16-120).
3. The network in eval mode (`get_fisher` calls `model.eval()`), so every BN normalises with
   its running statistics (mean 0, variance 1 at initialisation) and samples are independent.
4. θ_sub: from each of the first 128 parameter tensors in `named_parameters()` order
   (`--params_grad_len` 128), p scalars at flat indices `linspace(0, n−1, p).long()`.
   p = 1, i.e. the first scalar of each tensor: the paper's NB201 table comes from the runs of
   12 Nov 2024 ("table 1 adjust (sample first layers)", commit 779a3a8), whose code takes
   element 0 of every tensor; the later `--p` argument (count per tensor, `linspace`) equals it
   at p = 1, and its default 0 selects nothing, so it had to be given.
5. J_n = ∂logits_n/∂θ_sub ([K, P] per sample n), official code: vmap over samples of jacrev.
6. p_n = c₁·softmax(logits_n) + c₂ with c₁ = 1 − α, c₂ = α/K, α = 0.05 held in float16 as in the
   code (c₁ = 0.9501953125, c₂ = fp16(α/K), e.g. 0.004997253 for K = 10; p_n sums to ~1.00017).
   L_n: the lower-triangular factor of Theorem 1 of Tanabe & Sagae (JRSS-B 1992) with
   L_n L_nᵀ = diag(p_n) − p_n p_nᵀ: q_j = 1 − Σ_{i≤j} p_i (q_K := 0), d_j = √(p_j q_j / q_{j−1})
   (q_0 := 1), L_jj = d_j, L_ij = −p_i d_j / q_j for i > j, 0 above the diagonal.
7. F = mean_n (L_n J_n)ᵀ (L_n J_n) (the code multiplies L_n, not L_nᵀ, into J_n: this is
   J_nᵀ L_nᵀ L_n J_n, which is not J_nᵀ(diag p_n − p_n p_nᵀ)J_n; kept as in the code).
8. λ = singular values of F; q = `torch.quantile(λ, [0.1, …, 0.9])` (9 deciles, linear
   interpolation); q̃ = q / (‖q‖₁ + 1e−10); **VKDNW = −Σ q̃ log(q̃ + 1e−10)**.
9. **VKDNW_single = ℵ + VKDNW**, ℵ = `len(list(model.named_parameters()))`: every parameter
   tensor (conv and linear weights, linear bias, BN weight and bias; not BN buffers), including
   tensors past the first 128 and those of ops whose output is unused. On TSS, ℵ = 21 + 45·(number
   of nor_conv_1x1 / nor_conv_3x3 edges in the cell). The official notebooks rank VKDNW_single as
   the tuple (ℵ, VKDNW) (dense rank, lexicographic); since 0 ≤ VKDNW ≤ log 9 < 45, ℵ + VKDNW
   orders TSS networks identically.

Deviations from the official code:
- The Jacobian is computed by reverse mode on the batched forward, one backward pass per class
  (K in all), instead of `vmap(jacrev(...))` over per-sample forwards: a forward hook on each
  module owning a selected scalar θ_j adds δ_{n,j}·∂out/∂θ_j to its output with δ = 0 (closed
  forms for Conv2d, Linear and eval-mode BN, whose outputs are linear in their own parameters:
  one output channel each), and ∂logits[:, k].sum()/∂δ gives J[:, k, :] for all samples at
  once because an eval-mode network treats samples independently. During that pass the 3×3
  average pools run as ones-kernel depthwise convolutions divided by the window counts and the
  eval-mode BNs as x·s + t (the same functions; `avg_pool2d` and BN backward are slow on CPU).
  Same values up to float32 rounding (checked against a per-sample, per-class
  `torch.autograd.grad` loop and against `vmap(jacrev)` in the tests; on a TSS network
  |ΔJ| ≤ 5e−7·max|J|); ~4× less CPU than `vmap(jacrev)` on one core (4.6 s vs 18.4 s, one
  5-conv architecture, on a shared, loaded machine).
- The Gaussian input and the Kaiming draws come from one `torch.Generator` seeded with
  `ctx.seed` (input first, so every architecture sees the same input; then the weights in
  `net.apply` order); the official code uses the global RNG (`prepare_seed(rand_seed)` once,
  then one stream across all architectures). The probe's real images are not used (only their
  resolution).
- L_n, F and the singular values are computed in float64 from the float32 logits and Jacobian
  (the official code stays in float32, on GPU); this removes rounding noise from the small
  eigenvalues, whose deciles enter the entropy.
- A failed SVD or a non-finite F gives NaN; the official code sets λ = (0, 0), i.e. VKDNW = 0.
- The network is gm_lab's own TSS/SSS network (the same modules, in the same order, as xautodl's
  TinyNetwork, returning logits only) rather than the repository's `custom/tss_model.py`. The
  official NB201 code covers TSS only; on SSS every network has the same tensors (one ℵ), so
  VKDNW_single ranks SSS networks as VKDNW does.
- VKDNW_agg (ranks over a population) is not a per-architecture proxy and is not here.

`vkdnw` and `vkdnw_single` share one pass: the last (ℵ, VKDNW) is kept, keyed by the
architecture, seed, input shape and a digest of the re-initialised weights.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from gm_lab.plugins import Need, ProxyContext, register_proxy
from gm_lab.plugins.deferred import F, nn, torch

if TYPE_CHECKING:
    from torch import Generator, Tensor

BATCH_SIZE = 64  # tss_general_.py --batch_size default
PARAM_TENSORS = 128  # --params_grad_len default: the first 128 parameter tensors
PER_TENSOR = 1  # scalars per tensor (p); 1 = the first element, as in the paper's NB201 runs
ALPHA = 0.05  # softmax smoothing of cholesky_covariance, held in float16 there
EPS = 1e-10  # the official normalisation and log offsets
RESOLUTION = 32

REFERENCE = (
    'Tybl & Neumann, "Training-free Neural Architecture Search through Variance of Knowledge '
    'of Deep Network Weights", CVPR 2025, arXiv 2502.04975; code ondratybl/VKDNW'
)


@register_proxy("vkdnw", needs=Need.BACKWARD, sign=1, reference=REFERENCE)
def vkdnw(ctx: ProxyContext) -> float:
    """VKDNW: entropy of the normalised deciles of the eigenvalues of the Fisher information of
    one scalar from each of the first 128 parameter tensors (Týbl & Neumann, CVPR 2025).

    Kaiming-normal re-initialisation, eval mode, 64 Gaussian-noise inputs, all seeded by
    `ctx.seed`; definition and deviations from the official code in the module docstring.
    """
    return _aleph_and_vkdnw(ctx)[1]


@register_proxy("vkdnw_single", needs=Need.BACKWARD, sign=1, reference=REFERENCE)
def vkdnw_single(ctx: ProxyContext) -> float:
    """VKDNW_single: ℵ + VKDNW, ℵ = the number of parameter tensors of the network (Týbl &
    Neumann, CVPR 2025); ranks like the paper's (ℵ, VKDNW) lexicographic order.

    Same pass as `vkdnw` (computed once when both are scored in a row); definition and
    deviations in the module docstring.
    """
    aleph, value = _aleph_and_vkdnw(ctx)
    return aleph + value


# The last (key, (ℵ, VKDNW)): scoring vkdnw then vkdnw_single on one network runs one pass.
# The key holds a digest of the re-initialised weights and the input, so a hit is the same
# computation. One tuple, replaced whole (safe across threads).
_LAST: list[tuple[tuple, tuple[int, float]]] = []


def _aleph_and_vkdnw(ctx: ProxyContext) -> tuple[int, float]:
    net, inputs = _prepared(ctx)
    with torch.no_grad():
        digest = tuple(float(t.double().sum()) for t in net.state_dict().values())
    key = (ctx.arch, ctx.space, ctx.num_classes, ctx.seed, tuple(inputs.shape), digest)
    last = _LAST[0] if _LAST else None
    if last is not None and last[0] == key:
        return last[1]
    result = (num_param_tensors(net), vkdnw_score(net, inputs))
    _LAST[:] = [(key, result)]
    return result


def _prepared(ctx: ProxyContext) -> tuple[nn.Module, Tensor]:
    """The context's network re-initialised and its Gaussian input, from one seeded generator
    (input first, so it is the same for every architecture)."""
    resolution = (RESOLUTION, RESOLUTION)
    if ctx.images is not None:
        resolution = tuple(int(s) for s in ctx.images.shape[-2:])
    generator = torch.Generator().manual_seed(int(ctx.seed))
    inputs = torch.randn(BATCH_SIZE, 3, *resolution, generator=generator)
    net = ctx.network()
    kaiming_normal_fanin_init(net, generator)
    return net, inputs


def kaiming_normal_fanin_init(net: nn.Module, generator: Generator | None = None) -> nn.Module:
    """The official `init_model(model, 'kaiming_norm_fanin')`: Conv2d/Linear weights
    Kaiming-normal (fan_in, ReLU), biases 0; affine BatchNorm2d/GroupNorm weight 1, bias 0."""

    def init(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(
                m.weight, mode="fan_in", nonlinearity="relu", generator=generator
            )
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    with torch.no_grad():
        net.apply(init)
    return net


def num_param_tensors(net: nn.Module) -> int:
    """ℵ: the number of parameter tensors, as the official `len(list(model.named_parameters()))`."""
    return len(list(net.named_parameters()))


def selected_indices(
    net: nn.Module, tensors: int = PARAM_TENSORS, per_tensor: int = PER_TENSOR
) -> list[tuple[str, list[int]]]:
    """θ_sub: (name, flat indices) for the first `tensors` parameter tensors, `per_tensor`
    indices each at `linspace(0, n−1, per_tensor).long()` (repeats kept, as in the code)."""
    chosen = list(net.named_parameters())[:tensors]
    return [
        (name, torch.linspace(0, p.numel() - 1, steps=per_tensor).long().tolist())
        for name, p in chosen
    ]


def logit_jacobian(
    net: nn.Module, inputs: Tensor, tensors: int = PARAM_TENSORS, per_tensor: int = PER_TENSOR
) -> tuple[Tensor, Tensor]:
    """(logits [B, K], J [B, K, P]): per-sample Jacobian of the logits w.r.t. θ_sub, the network
    as it is (the caller sets eval mode; in train mode BN couples the samples and J would be the
    Jacobian of Σ_n logits instead).

    A forward hook on each module owning a selected scalar θ_j adds δ_{:,j}·∂out/∂θ_j to its
    output, δ = 0 [B, P]; then one backward pass per class, of logits[:, k].sum() w.r.t. δ.
    Parameters are frozen during the pass so no weight gradient is computed.
    """
    owners = _owners(net)
    columns: dict[int, list[tuple[str, int, int]]] = {}  # id(module) -> (param, index, column)
    modules: dict[int, nn.Module] = {}
    n_cols = 0
    for name, idx in selected_indices(net, tensors, per_tensor):
        module, pname = owners[name]
        modules[id(module)] = module
        for i in idx:
            columns.setdefault(id(module), []).append((pname, i, n_cols))
            n_cols += 1
    delta = torch.zeros(inputs.shape[0], n_cols, dtype=inputs.dtype, requires_grad=True)
    busy: set[int] = set()  # a module inside its own forward-mode derivative (re-entrant call)

    def hook(module: nn.Module, args: tuple, out: Tensor) -> Tensor | None:
        if id(module) in busy:
            return None
        busy.add(id(module))
        try:
            return _inject(module, args[0].detach(), out, columns[id(module)], delta)
        finally:
            busy.discard(id(module))

    frozen = [p for p in net.parameters() if p.requires_grad]
    handles = [m.register_forward_hook(hook) for m in modules.values()]
    swapped = _swap_slow_modules(net)
    try:
        for p in frozen:
            p.requires_grad_(False)
        with torch.enable_grad():
            logits = net(inputs)
            rows = []
            for k in range(logits.shape[1] if logits.requires_grad else 0):
                (grad,) = torch.autograd.grad(
                    logits[:, k].sum(),
                    delta,
                    retain_graph=k + 1 < logits.shape[1],
                    allow_unused=True,
                    materialize_grads=True,  # zero columns if no selected module ran
                )
                rows.append(grad)
    finally:
        for h in handles:
            h.remove()
        for p in frozen:
            p.requires_grad_(True)
        for m in swapped:
            del m.forward
    if not rows:  # no selected module ran: the logits do not depend on θ_sub
        return logits.detach(), logits.new_zeros(*logits.shape, n_cols)
    return logits.detach(), torch.stack(rows, dim=1)


def _swap_slow_modules(net: nn.Module) -> list[nn.Module]:
    """Give modules that are slow on CPU a forward computing the same function faster (the
    backward runs once per class): a 3×3, stride-1, padding-1 AvgPool2d (TSS `avg_pool_3x3`)
    becomes a ones-kernel depthwise convolution divided by the window counts (~6× faster than
    `avg_pool2d` forward and backward); an eval-mode BatchNorm2d becomes x·s + t with its
    per-channel scale and shift. Same values up to float32 rounding. Returns the modules
    changed; the caller deletes their instance `forward` afterwards."""
    swapped = []
    for m in net.modules():
        if "forward" in m.__dict__:
            continue
        if (
            isinstance(m, nn.AvgPool2d)
            and _pair(m.kernel_size) == (3, 3)
            and _pair(m.stride) == (1, 1)
            and _pair(m.padding) == (1, 1)
            and not m.ceil_mode
            and m.divisor_override is None
        ):
            m.forward = _BoxAverage(m.count_include_pad)
        elif isinstance(m, nn.BatchNorm2d) and not m.training and m.running_var is not None:
            m.forward = _ChannelAffine(m)
        else:
            continue
        swapped.append(m)
    return swapped


def _pair(value: int | tuple[int, ...]) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


class _BoxAverage:
    """avg_pool2d(x, 3, stride=1, padding=1) of a 4-D x as ones-kernel depthwise conv / counts."""

    def __init__(self, count_include_pad: bool) -> None:
        self.count_include_pad = count_include_pad

    def __call__(self, x: Tensor) -> Tensor:
        c, (h, w) = x.shape[1], x.shape[-2:]
        ones = x.new_ones(c, 1, 3, 3)
        total = F.conv2d(x, ones, padding=1, groups=c)
        if self.count_include_pad:
            return total / 9.0
        counts = F.conv2d(x.new_ones(1, 1, h, w), ones[:1], padding=1)
        return total / counts


class _ChannelAffine:
    """An eval-mode BatchNorm2d as x·s + t, s = γ/√(var + ε), t = β − mean·s."""

    def __init__(self, bn: nn.BatchNorm2d) -> None:
        with torch.no_grad():
            scale = torch.rsqrt(bn.running_var + bn.eps)
            if bn.weight is not None:
                scale = scale * bn.weight
            shift = -bn.running_mean * scale
            if bn.bias is not None:
                shift = shift + bn.bias
        self.scale = scale.reshape(1, -1, 1, 1)
        self.shift = shift.reshape(1, -1, 1, 1)

    def __call__(self, x: Tensor) -> Tensor:
        return x * self.scale + self.shift


def _inject(
    module: nn.Module, x: Tensor, out: Tensor, cols: list[tuple[str, int, int]], delta: Tensor
) -> Tensor:
    """out + Σ_j δ_{:,j}·∂out/∂θ_j over the module's selected scalars. Conv2d, Linear and
    eval-mode BatchNorm2d touch one output channel per scalar (closed forms, added to that
    channel only); other modules get the full forward-mode derivative."""
    channels, values = [], []
    for pname, index, j in cols:
        d = delta[:, j]
        part = _channel_derivative(module, pname, index, x, out)
        if part is None:
            tangent = _jvp_derivative(module, pname, index, x)
            out = out + d.reshape((-1,) + (1,) * (out.dim() - 1)) * tangent
        else:
            channel, value = part
            channels.append(channel)
            values.append(d.reshape((-1,) + (1,) * (value.dim() - 1)) * value)
    if channels:
        index = torch.tensor(channels, dtype=torch.long)
        out = out.index_add(1, index, torch.stack(values, dim=1))
    return out


def _channel_derivative(
    module: nn.Module, pname: str, index: int, x: Tensor, out: Tensor
) -> tuple[int, Tensor] | None:
    """(c, v): ∂ module(x) / ∂ param[flat index] is zero except output channel c, where it is v
    (batch first, channel dimension removed). Exact, as these modules are linear in their own
    parameters. None for other modules."""
    param = getattr(module, pname)
    linear_2d = isinstance(module, nn.Linear) and x.dim() == 2
    if pname == "bias" and (isinstance(module, (nn.Conv2d, nn.BatchNorm2d)) or linear_2d):
        return index, out.new_ones(out.shape[0], *out.shape[2:])
    if isinstance(module, nn.Conv2d) and module.groups == 1 and module.padding_mode == "zeros":
        if isinstance(module.padding, str):
            return None
        o, i, kh, kw = _unravel(index, param.shape)
        kernel = x.new_zeros(1, 1, *param.shape[2:])
        kernel[0, 0, kh, kw] = 1.0
        shifted = F.conv2d(
            x[:, i : i + 1], kernel, None, module.stride, module.padding, module.dilation
        )
        return o, shifted[:, 0]
    if linear_2d:
        o, i = _unravel(index, param.shape)
        return o, x[:, i]
    if (
        isinstance(module, nn.BatchNorm2d)
        and not module.training
        and module.running_var is not None
    ):
        scale = torch.sqrt(module.running_var[index] + module.eps)
        return index, (x[:, index] - module.running_mean[index]) / scale
    return None


def _owners(net: nn.Module) -> dict[str, tuple[nn.Module, str]]:
    """Full parameter name -> (the module holding it directly, its local name)."""
    owners = {}
    for mname, module in net.named_modules():
        for pname, _ in module.named_parameters(recurse=False):
            owners[f"{mname}.{pname}" if mname else pname] = (module, pname)
    return owners


def _unravel(index: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    coords = []
    for size in reversed(shape):
        coords.append(index % size)
        index //= size
    return tuple(reversed(coords))


def _jvp_derivative(module: nn.Module, pname: str, index: int, x: Tensor) -> Tensor:
    """∂ module(x) / ∂ param[flat index] by forward-mode AD of the module alone."""
    from torch.func import functional_call, jvp

    param = getattr(module, pname)
    direction = torch.zeros_like(param)
    direction.view(-1)[index] = 1.0
    _, tangent = jvp(
        lambda p: functional_call(module, {pname: p}, (x,)), (param.detach(),), (direction,)
    )
    return tangent


def smoothed_probabilities(logits: Tensor) -> Tensor:
    """p = (1 − α)·softmax + α/K with the official float16 constants (float64 result)."""
    alpha = torch.tensor(ALPHA, dtype=torch.float16)
    scale = float(1 - alpha)
    shift = float(alpha / logits.shape[1])
    return torch.softmax(logits.double(), dim=1) * scale + shift


def cholesky_factor(prob: Tensor) -> Tensor:
    """L [B, K, K], lower triangular, L Lᵀ = diag(p) − p pᵀ (Tanabe & Sagae 1992, Theorem 1; the
    official `cholesky_covariance` for p summing to 1)."""
    k = prob.shape[1]
    q = 1.0 - torch.cumsum(prob, dim=1)
    q[:, -1] = 0.0
    q_prev = torch.roll(q, shifts=1, dims=1)
    q_prev[:, 0] = 1.0
    d = torch.sqrt(prob * q / q_prev)
    ratio = torch.nan_to_num(-prob.unsqueeze(2) / q.unsqueeze(1), neginf=0.0)  # −p_i / q_j
    strictly_lower = torch.tril(torch.ones(k, k, dtype=prob.dtype), diagonal=-1)
    eye = torch.eye(k, dtype=prob.dtype)
    return (ratio * strictly_lower + eye) * d.unsqueeze(1)


def fisher_matrix(logits: Tensor, jacobian: Tensor) -> Tensor:
    """F = mean_n (L_n J_n)ᵀ (L_n J_n), in float64: the official `get_fisher(use_logits=False)`."""
    factor = cholesky_factor(smoothed_probabilities(logits))
    lj = factor @ jacobian.double()
    return (lj.transpose(1, 2) @ lj).mean(dim=0)


def decile_entropy(eigenvalues: Tensor) -> float:
    """−Σ q̃ log(q̃ + 1e−10), q̃ = q / (‖q‖₁ + 1e−10), q = the 9 deciles of `eigenvalues`."""
    values = eigenvalues.double()
    levels = torch.arange(1, 10, dtype=torch.float64) / 10
    q = torch.quantile(values, levels)
    q = q / (q.abs().sum() + EPS)
    return float(-(q * torch.log(q + EPS)).sum())


def vkdnw_score(
    net: nn.Module, inputs: Tensor, tensors: int = PARAM_TENSORS, per_tensor: int = PER_TENSOR
) -> float:
    """VKDNW of `net` (as initialised; put in eval mode here) on `inputs`: the decile entropy of
    the singular values of the Fisher matrix of θ_sub; NaN when F is empty or not finite or its
    SVD fails."""
    net.eval()
    logits, jacobian = logit_jacobian(net, inputs, tensors, per_tensor)
    fisher = fisher_matrix(logits, jacobian)
    if fisher.numel() == 0 or not bool(torch.isfinite(fisher).all()):
        return math.nan
    try:
        eigenvalues = torch.linalg.svdvals(fisher)
    except RuntimeError:  # torch.linalg.LinAlgError: no convergence
        return math.nan
    return decile_entropy(eigenvalues)
