"""Probe one architecture: shared passes at initialisation -> per-layer statistics and proxies.

The passes, each run once and shared by everything that can use it (train-mode BN throughout,
as every reference scores networks):

1. real forward with hooks: conv/linear inputs and outputs A, which outputs feed a BatchNorm,
   and for NASWOT each ReLU's code kernel (computed once per distinct input tensor);
2. one backward for the cross-entropy gradients w.r.t. the weights (G) and the layer
   outputs (dA): snip, grad_norm, plain, fisher, the G/dA statistics, NASWOT's "visited in
   backward" filter, and ZiCo's two half-batch gradients (split out per layer, no new pass);
   for GraSP by invariance it runs as `split_backward`, recording a graph only downstream of
   the first layer no BatchNorm follows (what GraSP differentiates again; same numbers);
3. an input-Jacobian backward of Σ logits through the same graph: jacov and EPE-NAS;
4. GraSP's -θ·Hg: by default `grasp_by_invariance` (closed form for BN-fed layers, a double
   backward only downstream of the others), or "shared" (create_graph on pass 2, then a double
   backward through everything) or "separate" (foresight's own extra forward); all three give
   the same value (tested), benchmarks/probe_speed.py compares their cost. While GraSP is
   wanted, passes 1-4 run with `lean_batchnorm` and `lean_conv` (same numbers; a closed-form
   BatchNorm double backward and a Conv2d double backward on oneDNN's gradient kernels, which
   together cut GraSP's cost by about a third);
5. a no-grad forward of the Gaussian batch (A_noise statistics, Zen's f(x)), then Zen's forward
   of x + 0.01ε, with BN running statistics reset before the two;
6. the proxies' own small passes: synflow (float64 |θ|, batch 1, BN bypassed, through
   torch.func.functional_call: the network itself is untouched) and MeCo (one image);
7. standalone proxies (plug-ins declaring no shared product) last, each on its own fresh
   network from `ctx.network()` (`score_standalone` runs them without passes 1-6).

`probe_network` runs these passes on any classifier module (its conv/linear layers found by
hooks); `probe_architecture` builds a NATS-Bench network from its arch string and delegates to
it, so both share this one code path. A proxy reading structure a module lacks (Zen's global
pool, NASWOT's ReLU modules) is NaN for it, with a `ProxyUnavailableWarning`.

Every pass runs with `lean_pool`: average pools give the same numbers from depthwise
convolutions, much faster than PyTorch's pool kernels, and a double backward that keeps
GraSP's gradients channels_last.

Networks and inputs use torch.channels_last by default: average pooling, which dominates TSS
nets, is much cheaper in that layout; `channels_last=False` gives the same numbers to float32
rounding (tested). The caller sets torch's thread count (1 per worker process).
"""

from __future__ import annotations

import contextlib
import copy
import time
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gm_lab.benchmark.spaces import INPUT_SIZE, NUM_CLASSES
from gm_lab.inputs import Minibatch, gaussian_minibatch, load_minibatch
from gm_lab.networks import build_network
from gm_lab.plugins import PROXIES, STATISTICS, ProxyContext, ProxySpec
from gm_lab.plugins.passes import PassPlan, plan_passes, products_of
from gm_lab.plugins.specs import ProxyUnavailable
from gm_lab.probe.backward_split import split_backward
from gm_lab.probe.batchnorm import lean_batchnorm
from gm_lab.probe.convolution import lean_conv
from gm_lab.probe.pooling import lean_pool
from gm_lab.probe.products import grasp_by_invariance, grasp_exact, relu_code_kernel, zico_halves
from gm_lab.probe.record import ProbeConfig, ProbeRecord
from gm_lab.probe.statistics import LayerBundle, compute_statistics, layer_facts
from gm_lab.probe.torch_internals import sequence_nr, sequence_nr_available

GraspMode = Literal["invariance", "shared", "separate"]
ZEN_ALPHA = 0.01  # Zen-NAS mixup_gamma
ZEN_SEED_OFFSET = 7919  # ε of Zen is drawn from seed + this, apart from the batches' own draws

NUMERIC_ERRORS = (ArithmeticError, np.linalg.LinAlgError, torch.linalg.LinAlgError)


def default_inputs(config: ProbeConfig) -> tuple[Minibatch, Minibatch]:
    """The batch a config prescribes and the Gaussian batch, as gm_lab.probe.runner loads them:
    noise is gaussian_minibatch(dataset, batch_size, seed); for input_kind "gaussian" it is also
    the batch."""
    noise = gaussian_minibatch(config.dataset, config.batch_size, config.seed)
    if config.input_kind == "gaussian":
        return noise, noise
    return load_minibatch(config.dataset, config.batch_size, config.seed), noise


def shared_proxies() -> tuple[str, ...]:
    """The proxies computed from the shared passes, which every full probe records."""
    return tuple(s.name for s in PROXIES.specs() if not s.standalone)


def resolve_proxies(proxies: bool | Iterable[str] | None) -> tuple[str, ...]:
    """True: the shared-pass proxies (`shared_proxies`); False/None: none (statistics only);
    else the named ones (standalone proxies included), checked."""
    if proxies is True:
        return shared_proxies()
    if proxies is None or proxies is False:
        return ()
    names = tuple(dict.fromkeys(proxies))
    unknown = [n for n in names if n not in PROXIES]
    if unknown:
        raise ValueError(f"unknown proxies {unknown}; choose from {list(PROXIES)}")
    return names


class _Clock:
    """Accumulates wall-clock seconds per named pass into a timings dict."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def add(self, name: str, start: float) -> None:
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start


@dataclass
class _RealPass:
    """Products of the real-batch passes, layers in forward order."""

    names: list[str]
    modules: list[nn.Module]
    outputs: list[Tensor]
    weight_grads: list[Tensor]
    output_grads: list[Tensor]
    n_outputs: int  # width of the logits
    relu_kernel: np.ndarray | None = None
    jacobian: np.ndarray | None = None
    grasp: float | None = None
    zico_halves: list[list[Tensor]] | None = None


@dataclass
class _NoisePass:
    outputs: dict[nn.Module, Tensor] = field(default_factory=dict)
    zen_distance: float | None = None
    bn_running_var: np.ndarray | None = None


@dataclass
class _Forward:
    """The recorded real forward: its graph stays alive while this object does."""

    x: Tensor
    logits: Tensor
    loss: Tensor
    modules: list[nn.Module]
    inputs: list[Tensor]
    outputs: list[Tensor]
    bn_fed: list[bool]  # output consumed by a train-mode BatchNorm (GraSP's invariance)
    relu_terms: list[Tensor]  # NASWOT kernel term of each ReLU module call
    relu_visited: set[int]  # those whose output received a gradient in a backward since
    relu_nodes: list  # each ReLU call's output grad_fn (None without a graph)

    def relu_kernel(self) -> np.ndarray | None:
        """NASWOT's K: the terms of the ReLUs the backward visited (the reference's filter);
        None when the network has no ReLU module at all (NASWOT is undefined for it)."""
        if not self.relu_terms:
            return None
        terms = [t for i, t in enumerate(self.relu_terms) if i in self.relu_visited]
        return torch.stack(terms).sum(0).numpy() if terms else np.zeros((self.x.shape[0],) * 2)


def _forward(
    net: nn.Module, images: Tensor, labels: Tensor, *, relu_kernel: bool, jacobian: bool
) -> _Forward:
    """Pass 1: forward with hooks on conv/linear layers, BatchNorms and (for NASWOT) ReLUs."""
    layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    modules: list[nn.Module] = []
    inputs: list[Tensor] = []
    outputs: list[Tensor] = []
    bn_inputs: dict[int, Tensor] = {}
    relu_terms: list[Tensor] = []
    relu_visited: set[int] = set()
    relu_nodes: list = []
    seen: dict[tuple[int, int], tuple[weakref.ref, Tensor]] = {}

    def on_layer(module: nn.Module, inp: tuple, out: Tensor) -> None:
        modules.append(module)
        inputs.append(inp[0])
        outputs.append(out)

    def on_bn(module: nn.Module, inp: tuple) -> None:
        if module.training:
            bn_inputs[id(inp[0])] = inp[0]

    def on_relu(_module: nn.Module, inp: tuple, out: Tensor) -> None:
        # Several ReLUs read the same node output: compute its codes' kernel once. A weak
        # reference tells a reused id apart without keeping the tensor alive.
        key = (id(inp[0]), inp[0]._version)
        if key not in seen or seen[key][0]() is not inp[0]:
            with torch.no_grad():
                seen[key] = (weakref.ref(inp[0]), relu_code_kernel(inp[0]))
        index = len(relu_terms)
        relu_terms.append(seen[key][1])
        relu_nodes.append(out.grad_fn)
        if out.requires_grad:
            out.register_hook(lambda _grad: relu_visited.add(index))

    handles = [m.register_forward_hook(on_layer) for m in layers]
    handles += [
        m.register_forward_pre_hook(on_bn)
        for m in net.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]
    if relu_kernel:
        handles += [m.register_forward_hook(on_relu) for m in net.modules() if _is_relu(m)]
    x = images.detach().clone().requires_grad_(True) if jacobian else images
    try:
        logits = net(x)
    finally:
        for h in handles:
            h.remove()
    if not isinstance(logits, Tensor) or logits.dim() != 2 or logits.shape[0] != len(labels):
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise TypeError(f"the network must return logits [{len(labels)}, classes], got {shape}")
    fed = [bn_inputs.get(id(a)) is a for a in outputs]
    loss = F.cross_entropy(logits, labels)
    return _Forward(
        x, logits, loss, modules, inputs, outputs, fed, relu_terms, relu_visited, relu_nodes
    )


def _real_pass(
    net: nn.Module,
    images: Tensor,
    labels: Tensor,
    *,
    relu_kernel: bool,
    jacobian: bool,
    zico: bool,
    grasp: GraspMode | None,
    clock: _Clock,
    backward: bool = True,
) -> _RealPass:
    """Passes 1-4 on the real batch: forward, then the backward calls sharing its graph.

    `backward=False` (lazy probing of forward-only terminals) stops after the forward: no
    gradients (G and dA are None), NASWOT's backward filter read off the recorded graph."""
    start = time.perf_counter()
    graph = backward or relu_kernel or jacobian
    with contextlib.nullcontext() if graph else torch.no_grad():
        fwd = _forward(net, images, labels, relu_kernel=relu_kernel, jacobian=jacobian)
    clock.add("forward", start)
    if not backward:
        result = _forward_only(net, fwd, relu_kernel)
        if jacobian:
            start = time.perf_counter()
            result.jacobian = _input_jacobian(fwd, retain_graph=False)
            clock.add("jacobian", start)
        return result
    weights = [m.weight for m in fwd.modules]
    n = len(weights)
    # Each backward keeps the graph only while a later one still needs it.
    later = {"jacobian": jacobian, "grasp": grasp in ("shared", "invariance")}

    start = time.perf_counter()
    cut = _graph_cut(fwd) if grasp == "invariance" else None
    if cut is None:
        grads = torch.autograd.grad(
            fwd.loss,
            weights + fwd.outputs,
            retain_graph=any(later.values()),
            create_graph=grasp == "shared",
            allow_unused=True,
            materialize_grads=True,
        )
    else:
        grads = _split_shared_backward(fwd, weights, cut)
    clock.add("backward", start)
    result = _RealPass(
        names=_names(net, fwd.modules),
        modules=fwd.modules,
        outputs=[a.detach() for a in fwd.outputs],
        weight_grads=[g.detach() for g in grads[:n]],
        output_grads=[g.detach() for g in grads[n:]],
        n_outputs=int(fwd.logits.shape[1]),
        relu_kernel=fwd.relu_kernel() if relu_kernel else None,
    )
    if zico:
        start = time.perf_counter()
        result.zico_halves = zico_halves(
            fwd.modules, fwd.inputs, result.output_grads, result.weight_grads
        )
        clock.add("zico", start)
    later["jacobian"] = False
    if jacobian:
        start = time.perf_counter()
        result.jacobian = _input_jacobian(fwd, retain_graph=any(later.values()))
        clock.add("jacobian", start)
    start = time.perf_counter()
    if grasp == "shared":
        result.grasp = grasp_exact(weights, list(grads[:n]))
    elif grasp == "invariance":
        graph_grads = [g if g.requires_grad else None for g in grads[:n]]
        result.grasp = grasp_by_invariance(
            fwd.loss, weights, result.weight_grads, fwd.bn_fed, graph_grads
        )
    del grads, fwd
    if grasp == "separate":
        loss = F.cross_entropy(net(images), labels)
        g = torch.autograd.grad(
            loss, weights, create_graph=True, allow_unused=True, materialize_grads=True
        )
        result.grasp = grasp_exact(weights, list(g))
    if grasp is not None:
        clock.add("grasp", start)
    return result


def _forward_only(net: nn.Module, fwd: _Forward, relu_kernel: bool) -> _RealPass:
    """The products of a forward with no backward. NASWOT keeps the ReLUs a backward would
    visit: those whose output node the loss's graph reaches (a walk over the recorded graph,
    no gradient computed)."""
    if relu_kernel and fwd.relu_terms:
        fwd.relu_visited.update(_reached_relus(fwd))
    n = len(fwd.modules)
    return _RealPass(
        names=_names(net, fwd.modules),
        modules=fwd.modules,
        outputs=[a.detach() for a in fwd.outputs],
        weight_grads=[None] * n,
        output_grads=[None] * n,
        n_outputs=int(fwd.logits.shape[1]),
        relu_kernel=fwd.relu_kernel() if relu_kernel else None,
    )


def _input_jacobian(fwd: _Forward, retain_graph: bool) -> np.ndarray:
    """∂Σlogits/∂x per sample, flattened (jacov, EPE-NAS)."""
    (jx,) = torch.autograd.grad(fwd.logits.sum(), fwd.x, retain_graph=retain_graph)
    return jx.detach().reshape(jx.shape[0], -1).double().numpy()


def _reached_relus(fwd: _Forward) -> set[int]:
    """Indices of the ReLU calls whose output the loss's graph reaches."""
    reached: set = set()
    stack = [fwd.loss.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in reached:
            continue
        reached.add(node)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return {i for i, node in enumerate(fwd.relu_nodes) if node is not None and node in reached}


def _graph_cut(fwd: _Forward) -> int | None:
    """Where pass 2 starts recording GraSP's graph: the autograd sequence number of the input
    of the first layer not feeding a BatchNorm (GraSP differentiates the backward again only
    downstream of those), -1 when that input is a leaf (record it all). None, one plain
    backward, when every layer feeds a BatchNorm or a weight serves several layer calls, or
    torch has no sequence numbers (gm_lab.probe.torch_internals)."""
    if not sequence_nr_available():
        return None
    producers = [fwd.inputs[i].grad_fn for i, fed in enumerate(fwd.bn_fed) if not fed]
    weights = [m.weight for m in fwd.modules]
    if not producers or len({id(w) for w in weights}) < len(weights):
        return None
    if any(p is None for p in producers):
        return -1
    return min(sequence_nr(p) for p in producers)


def _split_shared_backward(fwd: _Forward, weights: list[Tensor], cut: int) -> tuple[Tensor, ...]:
    """Pass 2 as `split_backward`: the gradients of layers after the cut carry a graph that
    GraSP differentiates, the others none; the same values as one plain call, bit for bit.
    Returns the weights' gradients, then the outputs', in layer order."""
    n = len(fwd.modules)
    after = [a.grad_fn is not None and sequence_nr(a.grad_fn) > cut for a in fwd.outputs]
    down = [i for i in range(n) if after[i]]
    up = [i for i in range(n) if not after[i]]
    g_down, g_up = split_backward(
        fwd.loss,
        cut,
        [weights[i] for i in down] + [fwd.outputs[i] for i in down],
        [weights[i] for i in up] + [fwd.outputs[i] for i in up],
    )
    grads: list[Tensor] = [torch.empty(0)] * (2 * n)
    for part, order in ((g_down, down), (g_up, up)):
        for k, i in enumerate(order):
            grads[i], grads[n + i] = part[k], part[len(order) + k]
    return tuple(grads)


def _names(net: nn.Module, modules: Sequence[nn.Module]) -> list[str]:
    name_of = {m: name for name, m in net.named_modules()}
    return [name_of[m] for m in modules]


def _is_relu(module: nn.Module) -> bool:
    return "ReLU" in type(module).__name__  # the NASWOT reference's test on str(type(module))


def _global_pool(net: nn.Module) -> nn.Module | None:
    """The last global-pooling module: Zen's f is the feature map entering it."""
    pools = [m for m in net.modules() if isinstance(m, nn.AdaptiveAvgPool2d)]
    return pools[-1] if pools else None


def _capture(
    net: nn.Module, x: Tensor, modules: Sequence[nn.Module], pool: nn.Module | None
) -> tuple[dict[nn.Module, Tensor], Tensor | None]:
    """No-grad forward of `x`: the outputs of `modules` and the feature map entering `pool`."""
    outputs: dict[nn.Module, Tensor] = {}
    features: list[Tensor] = []

    def on_layer(module: nn.Module, _inp: tuple, out: Tensor) -> None:
        outputs[module] = out

    def on_pool(_module: nn.Module, inp: tuple) -> None:
        features.append(inp[0].clone())  # clone: the ReLU before it works in place

    handles = [m.register_forward_hook(on_layer) for m in modules]
    if pool is not None:
        handles.append(pool.register_forward_pre_hook(on_pool))
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()
    return outputs, features[0] if features else None


def _noise_pass(
    net: nn.Module,
    modules: Sequence[nn.Module],
    noise: Tensor,
    *,
    zen: bool,
    seed: int,
    clock: _Clock,
) -> _NoisePass:
    """Pass 5: the Gaussian batch's layer outputs, and Zen's pair of forwards."""
    pool = _global_pool(net) if zen else None
    batchnorms = [  # those keeping running statistics (Zen reads their variances)
        m
        for m in net.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_var is not None
    ]
    if pool is not None:
        for bn in batchnorms:
            bn.reset_running_stats()  # Zen reads the running variances its two forwards leave
    start = time.perf_counter()
    outputs, clean = _capture(net, noise, modules, pool)
    clock.add("noise", start)
    result = _NoisePass(outputs=outputs)
    if pool is not None and clean is not None:
        start = time.perf_counter()
        gen = torch.Generator().manual_seed(seed + ZEN_SEED_OFFSET)
        eps = torch.randn(noise.shape, generator=gen, dtype=noise.dtype)
        mixed = noise + ZEN_ALPHA * eps.contiguous(memory_format=_format_of(noise))
        _, perturbed = _capture(net, mixed, (), pool)
        with torch.no_grad():
            result.zen_distance = float((clean - perturbed).abs().flatten(1).sum(1).mean())
            result.bn_running_var = np.array([float(bn.running_var.mean()) for bn in batchnorms])
        clock.add("zen", start)
    return result


def _format_of(t: Tensor) -> torch.memory_format:
    if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def _bundles(real: _RealPass, noise: _NoisePass) -> Iterator[LayerBundle]:
    """One LayerBundle per layer, created lazily so each layer's intermediates are freed early."""
    n = len(real.modules)
    for i, module in enumerate(real.modules):
        out = real.outputs[i]
        yield LayerBundle(
            facts=layer_facts(real.names[i], module, tuple(out.shape), i / max(n - 1, 1)),
            W=module.weight.detach(),
            G=real.weight_grads[i],
            A=out,
            dA=real.output_grads[i],
            A_noise=noise.outputs.get(module),
        )


def _check_batch(batch: Minibatch, config: ProbeConfig, what: str) -> None:
    """Refuse a batch that does not match the config (its numbers would be cached under it)."""
    size = INPUT_SIZE[config.dataset]
    expected = (config.batch_size, 3, size, size)
    if tuple(batch.images.shape) != expected:
        raise ValueError(f"{what} has shape {tuple(batch.images.shape)}; config needs {expected}")
    if batch.dataset != config.dataset:
        raise ValueError(f"{what} is for {batch.dataset!r}; config is for {config.dataset!r}")


def probe_architecture(
    index: int,
    arch: str,
    config: ProbeConfig,
    batch: Minibatch | None = None,
    noise: Minibatch | None = None,
    *,
    proxies: bool | Iterable[str] | None = True,
    channels_last: bool = True,
    grasp: GraspMode = "invariance",
    statistics: Sequence[str] | None = None,
) -> ProbeRecord:
    """Statistics and classic proxies of architecture `arch` (benchmark index `index`).

    Builds the seeded network of `config` and probes it with `probe_network` (the one code
    path of the passes). `batch`/`noise` default to `default_inputs(config)`; pass them when
    probing many architectures so they are loaded once. `proxies`: True for all, False for the
    statistics pass alone, or an iterable of proxy names. A proxy whose value is undefined for
    this network (singular matrix, zero distance) is NaN or ±inf; the record is always complete.
    `statistics`: see `probe_network` (None: all, and every pass).
    """
    t_total = time.perf_counter()
    if batch is None or noise is None:
        default_batch, default_noise = default_inputs(config)
        batch = default_batch if batch is None else batch
        noise = default_noise if noise is None else noise
    _check_batch(batch, config, "batch")
    _check_batch(noise, config, "noise batch")
    resolve_proxies(proxies)  # refuse unknown names before building anything
    num_classes = NUM_CLASSES[config.dataset]
    start = time.perf_counter()
    net = build_network(config.space, arch, num_classes, config.seed)
    build = time.perf_counter() - start
    record = probe_network(
        net,
        batch,
        noise.images,
        num_classes=num_classes,
        proxies=proxies,
        channels_last=channels_last,
        grasp=grasp,
        seed=config.seed,
        index=index,
        arch=arch,
        inplace=True,  # our own network: no copy needed
        space=config.space,
        dataset=config.dataset,
        build=partial(build_network, config.space, arch, num_classes, config.seed),
        statistics=statistics,
    )
    record.timings = {"build": build, **record.timings}
    record.timings["total"] = time.perf_counter() - t_total
    return record


class ProxyUnavailableWarning(RuntimeWarning):
    """A classic proxy cannot be computed for this network (it lacks the structure the proxy
    reads, or the proxy's own pass fails on it); its value is NaN."""


def probe_network(
    net: nn.Module,
    batch: Minibatch | tuple[Tensor, Tensor],
    noise: Tensor | Minibatch | None = None,
    *,
    num_classes: int | None = None,
    proxies: bool | Iterable[str] | None = True,
    channels_last: bool = True,
    grasp: GraspMode = "invariance",
    seed: int = 0,
    index: int = -1,
    arch: str = "",
    inplace: bool = False,
    threads: int | None = None,
    space: str = "",
    dataset: str = "",
    build: Callable[[], nn.Module] | None = None,
    statistics: Sequence[str] | None = None,
) -> ProbeRecord:
    """Statistics and proxies of any PyTorch classifier `net`, at its current weights.

    The passes of the module docstring, run on `net`: every nn.Conv2d and nn.Linear called in
    the forward is a layer (hooks find them, in call order; a module called twice is two
    layers), so any architecture works, with inputs shaped like `batch`'s images (CPU tensors;
    `net` on the CPU, returning logits [batch, classes]; `labels` int64 class indices).

    - `batch`: a `Minibatch` or an (images, labels) pair; `noise`: the Gaussian batch (a
      tensor shaped like the images, or a Minibatch), by default N(0, 1) of the images' shape
      drawn from a numpy Generator seeded by `seed` (for NATS-Bench input shapes exactly
      `gaussian_minibatch(dataset, B, seed).images`).
    - `num_classes`: the classifier's class count (EPE-NAS reads it); default the width of
      the logits.
    - `seed`: Zen's ε, the default noise, and torch's global RNG during the passes (forked, so
      the caller's stream is untouched; it makes dropout and other random layers repeatable).
    - `index`, `arch`: copied into the record; with `space` and `dataset` they are what
      standalone proxies see of the architecture (`ProxyContext`).
    - `build`: makes a fresh copy of the network for standalone proxies (default: deep
      copies of `net` as it was given).
    - `inplace`: probe `net` itself. By default a deep copy is probed, because the passes put
      the network in train mode, convert it to channels_last and update (Zen: reset) its
      BatchNorm running statistics; the weights themselves are never changed either way.
    - `threads`: torch's intra-op thread count during the probe (restored after); None leaves
      the caller's. Float reductions round differently with another thread count, and ratios
      of nearly cancelling sums (g_w_ratio_l, ...) amplify that well above 1e-6, so 1, the
      count the probe workers use, reproduces cached probes bit for bit.
    - `statistics`: None (every statistic, all passes: a full record), or the names of the
      statistics to compute; then only the passes that they and the shared proxies asked for
      need run (`gm_lab.plugins.passes`): a forward-only set never runs a backward (lazy
      probing). The record holds exactly those statistics; proxies read others on demand.

    Proxies that need structure a network may lack are NaN for it, with a
    `ProxyUnavailableWarning`, never an error: zen without an nn.AdaptiveAvgPool2d module (its
    f is the feature map entering the last one); naswot without modules whose type name
    contains "ReLU" (functional activations are invisible to hooks); synflow and meco when
    their own pass fails on the network (synflow: float64 |θ| with BatchNorm bypassed, batch 1;
    meco: one image in train mode, which e.g. BatchNorm1d refuses). Statistics are always
    complete.
    """
    clock = _Clock()
    t_total = time.perf_counter()
    images, labels = (batch.images, batch.labels) if isinstance(batch, Minibatch) else batch
    if isinstance(noise, Minibatch):
        noise = noise.images
    elif noise is None:
        noise = gaussian_like(images, seed)
    _check_tensors(net, images, labels, noise)
    wanted = [PROXIES[n] for n in resolve_proxies(proxies)]
    names = [s.name for s in wanted]
    plan = (
        PassPlan(True, True, products_of(wanted))
        if statistics is None
        else plan_passes(names, statistics)
    )
    needs = plan.products
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    given_images = images

    start = time.perf_counter()
    if build is None and any(s.standalone for s in wanted):
        pristine = copy.deepcopy(net)
        build = partial(copy.deepcopy, pristine)
    if not inplace:
        net = copy.deepcopy(net)
    net = net.to(memory_format=fmt)  # only 4-D parameters change layout
    net.train()
    images, noise_images = _in_format(images, fmt), _in_format(noise, fmt)
    clock.add("prepare", start)

    # lean_pool: the same numbers from faster kernels, so every pass (proxies' own included)
    # runs with it.
    with torch.random.fork_rng(devices=[]), _torch_threads(threads), lean_pool(net):
        torch.manual_seed(seed)
        second_order = "grasp" in needs
        with _lean_second_order(net) if second_order else contextlib.nullcontext():
            real = _real_pass(
                net,
                images,
                labels,
                relu_kernel="relu_kernel" in needs,
                jacobian="jacobian" in needs,
                zico="zico_halves" in needs,
                grasp=grasp if second_order else None,
                clock=clock,
                backward=plan.backward,
            )
        noisy = (
            _noise_pass(
                net, real.modules, noise_images, zen="zen_distance" in needs, seed=seed, clock=clock
            )
            if plan.noise
            else _NoisePass()
        )
        start = time.perf_counter()
        if statistics is None:
            layer_stats = compute_statistics(_bundles(real, noisy))
            proxy_stats: Mapping[str, np.ndarray] = layer_stats
        else:
            bundles = list(_bundles(real, noisy))
            layer_stats = compute_statistics(bundles, statistics)
            proxy_stats = _StatisticsOnDemand(bundles, layer_stats)
        clock.add("statistics", start)

        about = {  # what every proxy sees of the architecture
            "arch": arch,
            "space": space,
            "dataset": dataset,
            "num_classes": real.n_outputs if num_classes is None else int(num_classes),
            "seed": seed,
            "labels": labels,
        }
        shared = ProxyContext(
            **about,
            images=images,
            net=net,
            layer_stats=proxy_stats,
            products={
                "relu_kernel": real.relu_kernel,
                "jacobian": real.jacobian,
                "grasp": real.grasp,
                "zico_halves": real.zico_halves,
                "zen_distance": noisy.zen_distance,
                "bn_running_var": noisy.bn_running_var,
            },
            missing=_MAY_LACK,
        )
        own = ProxyContext(**about, images=given_images, build=build)
        layer_names = real.names
        del real, noisy
        if statistics is not None:
            del bundles
        values: dict[str, float] = {}
        for spec in wanted:
            start = time.perf_counter()
            values[spec.name] = score_proxy(spec, own if spec.standalone else shared)
            clock.add(f"proxy_{spec.name}", start)
    clock.add("total", t_total)
    return ProbeRecord(
        index=int(index),
        arch=arch,
        layer_names=layer_names,
        layer_stats=layer_stats,
        proxies=values,
        timings=clock.timings,
    )


class _StatisticsOnDemand(Mapping):
    """The statistics a lean probe computed, and any other one computed when a proxy first
    reads it (from the same bundles); one the passes run cannot give raises, naming it."""

    def __init__(self, bundles: list[LayerBundle], computed: dict[str, np.ndarray]) -> None:
        self._bundles = bundles
        self._values = dict(computed)

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._values:
            needs = STATISTICS[name].needs
            if self._bundles and not self._bundles[0].has(needs):
                raise RuntimeError(
                    f"statistic {name} needs {sorted(needs)}, which this lean probe did not "
                    "compute: a shared proxy reads more than its declared need"
                )
            self._values.update(compute_statistics(self._bundles, [name]))
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(STATISTICS.names())

    def __len__(self) -> int:
        return len(STATISTICS.names())


@contextlib.contextmanager
def _lean_second_order(net: nn.Module) -> Iterator[None]:
    """BatchNorm and Conv2d with lean double backwards (same values, GraSP cheaper)."""
    with lean_batchnorm(net), lean_conv(net):
        yield


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with `threads` torch threads (None: unchanged), restoring the count."""
    if threads is None:
        yield
        return
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive int or None, got {threads!r}")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def gaussian_like(images: Tensor, seed: int) -> Tensor:
    """N(0, 1) float32 noise of `images`' shape from a numpy Generator seeded by `seed`: the
    draw `gaussian_minibatch` makes, so for a dataset's input shape both give the same images."""
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.standard_normal(tuple(images.shape), dtype=np.float32))


def _check_tensors(net: nn.Module, images: Tensor, labels: Tensor, noise: Tensor) -> None:
    """Refuse inputs the passes cannot use, with a message saying why."""
    if not isinstance(net, nn.Module):
        raise TypeError(f"net must be a torch.nn.Module, got {type(net).__name__}")
    for what, t in (("images", images), ("labels", labels), ("noise", noise)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{what} must be a torch.Tensor, got {type(t).__name__}")
        if t.device.type != "cpu":
            raise ValueError(f"{what} is on {t.device}; the probe runs on the CPU")
    if any(p.device.type != "cpu" for p in net.parameters()):
        raise ValueError("the network has parameters off the CPU; the probe runs on the CPU")
    if images.dim() < 2 or images.shape[0] < 1:
        raise ValueError(f"images must be a batch [B, ...], got shape {tuple(images.shape)}")
    if labels.shape != (images.shape[0],) or labels.dtype != torch.int64:
        raise ValueError(
            f"labels must be int64 of shape ({images.shape[0]},), got {labels.dtype} "
            f"{tuple(labels.shape)}"
        )
    if noise.shape[1:] != images.shape[1:]:
        raise ValueError(f"noise has shape {tuple(noise.shape)}; images have {tuple(images.shape)}")


def _in_format(t: Tensor, fmt: torch.memory_format) -> Tensor:
    """`t` in memory format `fmt` (channels_last applies to 4-D batches only)."""
    return t.contiguous(memory_format=fmt) if t.dim() == 4 else t.contiguous()


# Why a network may lack a product of the shared passes (ProxyContext.missing).
_NO_RELU = "the network has no module whose type name contains 'ReLU'"
_NO_POOL = "no nn.AdaptiveAvgPool2d runs in its forward (Zen's global pool)"
_MAY_LACK = {"relu_kernel": _NO_RELU, "zen_distance": _NO_POOL, "bn_running_var": _NO_POOL}
# What a proxy's own pass may raise on a network it cannot handle (NaN, with a warning).
_PASS_ERRORS = (RuntimeError, ValueError, TypeError, NotImplementedError)


def score_proxy(spec: ProxySpec, ctx: ProxyContext) -> float:
    """One proxy's value. A numerical failure (singular matrix, ...) gives NaN, not an error;
    so does a network lacking what the proxy reads or on which its own pass fails, with a
    `ProxyUnavailableWarning` saying why."""
    if ctx.space and not spec.applies_to(ctx.space):
        where = ", ".join(sorted(spec.spaces or ()))
        return _unavailable(spec.name, f"it is defined on {where}, not {ctx.space}")
    try:
        with np.errstate(all="ignore"):
            return float(spec.compute(ctx))
    except ProxyUnavailable as exc:
        return _unavailable(spec.name, str(exc))
    except NUMERIC_ERRORS:
        return float("nan")
    except _PASS_ERRORS as exc:
        return _unavailable(spec.name, f"it failed ({type(exc).__name__}: {exc})")


def score_standalone(
    index: int,
    arch: str,
    config: ProbeConfig,
    batch: Minibatch | None = None,
    noise: Minibatch | None = None,
    *,
    names: Sequence[str] = (),
) -> ProbeRecord:
    """The standalone proxies `names` of one architecture, without the shared passes: a record
    with no statistics (what the probe cache keeps per proxy, gm_lab.probe.columns)."""
    specs = [PROXIES[n] for n in names]
    if any(not s.standalone for s in specs):
        raise ValueError("score_standalone computes standalone proxies only")
    if batch is None:
        batch = default_inputs(config)[0]
    num_classes = NUM_CLASSES[config.dataset]
    ctx = ProxyContext(
        arch=arch,
        space=config.space,
        dataset=config.dataset,
        num_classes=num_classes,
        seed=config.seed,
        images=batch.images,
        labels=batch.labels,
        build=partial(build_network, config.space, arch, num_classes, config.seed),
    )
    values, timings = {}, {}
    with torch.random.fork_rng(devices=[]):
        for spec in specs:
            torch.manual_seed(config.seed)
            start = time.perf_counter()
            values[spec.name] = score_proxy(spec, ctx)
            timings[f"proxy_{spec.name}"] = time.perf_counter() - start
    return ProbeRecord(index, arch, [], {}, values, timings)


def _unavailable(name: str, why: str) -> float:
    warnings.warn(f"proxy {name} is NaN for this network: {why}", ProxyUnavailableWarning, 3)
    return float("nan")
