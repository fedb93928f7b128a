"""One backward in two calls: a graph recorded downstream of a point of the forward, none above.

GraSP's Hessian-vector product differentiates the backward again, but only downstream of the
layers it perturbs (see `grasp_by_invariance`). Recording a graph over the whole first-order
backward keeps too much memory alive; running a second, graph-recording backward over the
downstream part repeats that part's work. `split_backward` cuts the shared backward instead:

- the autograd nodes created after a point of the forward (sequence number > `cut`) run in a
  first call with create_graph, which also captures the gradients flowing across the cut;
- a second call, without a graph, resumes from those gradients (`GradientEdge`s) through the
  nodes before the cut.

Each node runs once, with the kernels a single `torch.autograd.grad` call would use, so the
gradients are bit for bit those of one call (tested).

Sequence numbers are private to torch (gm_lab.probe.torch_internals). Where they are not
available, `split_backward` makes one create_graph call for every tensor instead: the same
gradients (to float rounding), a graph over the whole backward, upstream ones detached.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.autograd.graph import GradientEdge, Node, get_gradient_edge

from gm_lab.probe.torch_internals import sequence_nr, sequence_nr_available


def split_backward(
    loss: Tensor, cut: int, downstream: Sequence[Tensor], upstream: Sequence[Tensor]
) -> tuple[list[Tensor], list[Tensor]]:
    """Gradients of `loss` w.r.t. `downstream` (with a graph, differentiable again) and
    w.r.t. `upstream` (plain), in one backward's worth of work; the forward graph is kept.

    `downstream` tensors must be produced after the cut (every autograd node using them has a
    sequence number > `cut`), `upstream` ones before it; a tensor nothing reaches gets zeros.
    A ValueError says when an upstream tensor is also used after the cut (a weight shared by
    layers on both sides), whose gradient the two calls would split (checked on the fast path
    only: the public one makes a single call, see the module docstring).
    """
    if loss.grad_fn is None:
        raise ValueError("the loss has no autograd graph")
    if not sequence_nr_available():
        return _one_call(loss, downstream, upstream)
    inside, edges = _frontier(loss.grad_fn, cut)
    shared = [i for i, t in enumerate(upstream) if get_gradient_edge(t).node in inside]
    if shared:
        raise ValueError(f"upstream tensors {shared} are also used after the cut")
    first = torch.autograd.grad(
        loss,
        [*downstream, *edges],
        create_graph=True,
        retain_graph=True,
        allow_unused=True,
    )
    down = [_zeros_if_none(g, t) for g, t in zip(first[: len(downstream)], downstream, strict=True)]
    crossing = first[len(downstream) :]
    if not upstream:
        return down, []
    if not edges:
        return down, [torch.zeros_like(t) for t in upstream]
    up = torch.autograd.grad(
        edges,
        list(upstream),
        grad_outputs=[g.detach() for g in crossing],
        retain_graph=True,
        allow_unused=True,
        materialize_grads=True,
    )
    return down, list(up)


def _one_call(
    loss: Tensor, downstream: Sequence[Tensor], upstream: Sequence[Tensor]
) -> tuple[list[Tensor], list[Tensor]]:
    """The public path: one create_graph call for all, no check of weights shared across."""
    if not downstream and not upstream:
        return [], []
    grads = torch.autograd.grad(
        loss, [*downstream, *upstream], create_graph=True, retain_graph=True, allow_unused=True
    )
    n = len(downstream)
    down = [_zeros_if_none(g, t) for g, t in zip(grads[:n], downstream, strict=True)]
    return down, [_zeros_if_none(g, t).detach() for g, t in zip(grads[n:], upstream, strict=True)]


def _zeros_if_none(grad: Tensor | None, like: Tensor) -> Tensor:
    return torch.zeros_like(like) if grad is None else grad


def _frontier(root: Node, cut: int) -> tuple[set[Node], list[GradientEdge]]:
    """The nodes the first call runs, and the edges by which gradient leaves them, each edge
    carrying all of its gradient.

    A node before the cut that reaches another such edge's node (an average pool feeding the
    tensor it pools) would have its gradient summed in twice, once through the first call's
    capture and once resumed: it joins the first call's side, until no edge's node reaches
    another's. Sequence numbers fall along every edge, so those searches stop early.
    """
    inside = {root}
    pending = [root]
    while True:
        edges: dict[tuple[Node, int], None] = {}
        for node in _walk(pending, inside, cut):
            for child, nr in node.next_functions:
                if child is not None and child not in inside:
                    edges[(child, nr)] = None
        targets = {child for child, _ in edges}
        floor = min((sequence_nr(n) for n in targets), default=0)
        joining = [n for n in targets if _reaches(n, targets - {n}, floor)]
        if not joining:
            return inside, [GradientEdge(child, nr) for child, nr in edges]
        inside.update(joining)
        pending = list(inside)


def _walk(start: list[Node], inside: set[Node], cut: int) -> list[Node]:
    """All nodes of `inside`, after extending it from `start` by every node past the cut."""
    stack = list(start)
    while stack:
        node = stack.pop()
        for child, _ in node.next_functions:
            if child is not None and child not in inside and sequence_nr(child) > cut:
                inside.add(child)
                stack.append(child)
    return list(inside)


def _reaches(start: Node, targets: set[Node], floor: int) -> bool:
    """Whether a backward from `start` reaches one of `targets` (all numbered ≥ floor)."""
    stack, seen = [start], {start}
    while stack:
        for child, _ in stack.pop().next_functions:
            if child is None or child in seen or sequence_nr(child) < floor:
                continue
            if child in targets:
                return True
            seen.add(child)
            stack.append(child)
    return False
