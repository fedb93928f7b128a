"""The probe's only door to torch's private API: each use behind a feature check, with a public
fallback that gives the same numbers (to float rounding), only slower.

Two private calls make the probe's GraSP passes lean:

- `Node._sequence_nr()`, the creation order of autograd nodes: `split_backward` cuts pass 2
  where GraSP's graph starts (gm_lab.probe.backward_split, `_graph_cut` in gm_lab.probe.probe).
  Fallback: no cut; pass 2 is one plain backward and GraSP by invariance runs its own
  create_graph backward (`split_backward` called directly records the graph for everything).
- `torch._C._will_engine_execute_node(node)`, whether the running backward call executes a node:
  `lean_conv`'s backward computes only the input/weight gradients the call needs
  (gm_lab.probe.convolution). Fallback: it computes every gradient its inputs could take
  (as `ctx.needs_input_grad` says); autograd discards the ones the call does not need.

Each check runs once per process, on a tiny autograd graph: the attribute must exist and
answer as the fast path assumes, else its fallback is used. `GM_LAB_TORCH_FALLBACK=1` forces
both fallbacks (read on every call, so tests can switch paths). pyproject.toml pins the torch
range the fast path was tested on; other versions work through these checks.

(gm_lab.probe.allocator tunes glibc malloc, not torch, with its own check: a no-op elsewhere.)
"""

from __future__ import annotations

import functools
import os

import torch
from torch import Tensor

FALLBACK_ENV = "GM_LAB_TORCH_FALLBACK"

# Looked up by name so that a test can make either look absent (node types are immutable).
_SEQUENCE_NR = "_sequence_nr"
_WILL_EXECUTE = "_will_engine_execute_node"


def forced_fallback() -> bool:
    """Whether `GM_LAB_TORCH_FALLBACK` asks for the public path (1, true, yes, on)."""
    return os.environ.get(FALLBACK_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def sequence_nr_available() -> bool:
    """Whether `sequence_nr` may be called: the split pass 2 runs only if so."""
    return not forced_fallback() and _sequence_nr_works()


def will_execute_available() -> bool:
    """Whether the engine can be asked which nodes the running backward call executes."""
    return not forced_fallback() and _will_execute_works()


def fast_path_available() -> bool:
    """Whether the probe runs with every private-API optimisation."""
    return sequence_nr_available() and will_execute_available()


def sequence_nr(node: object) -> int:
    """Autograd sequence number of `node` (later nodes have larger numbers). Only call it when
    `sequence_nr_available()`; callers take their public path otherwise."""
    return getattr(node, _SEQUENCE_NR)()


def will_execute(node: object) -> bool:
    """Whether the running backward call executes `node`; True (compute it anyway: correct,
    slower) when the engine cannot be asked. Call it only inside a backward."""
    if not will_execute_available():
        return True
    return bool(getattr(torch._C, _WILL_EXECUTE)(node))


def reset() -> None:
    """Forget the feature checks (tests that fake an attribute call this before and after)."""
    _sequence_nr_works.cache_clear()
    _will_execute_works.cache_clear()


@functools.cache
def _sequence_nr_works() -> bool:
    return check_sequence_nr()


@functools.cache
def _will_execute_works() -> bool:
    return check_will_execute()


def check_sequence_nr() -> bool:
    """Uncached check: `_sequence_nr` exists on autograd nodes, gives ints, and numbers a node
    created later higher (what the cut relies on)."""
    try:
        with torch.inference_mode(False), torch.enable_grad():
            x = torch.ones(2, requires_grad=True)
            a = x * 2
            b = a + 1
            first, second = sequence_nr(a.grad_fn), sequence_nr(b.grad_fn)
        return isinstance(first, int) and isinstance(second, int) and second > first
    except Exception:
        return False


class _Ask(torch.autograd.Function):
    """Identity of two tensors whose backward asks the engine about their producers."""

    @staticmethod
    def forward(ctx, x: Tensor, y: Tensor, answers: list) -> Tensor:  # type: ignore[override]
        ctx.nodes = (x.grad_fn, y.grad_fn)
        ctx.answers = answers
        return x + y

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        ask = getattr(torch._C, _WILL_EXECUTE)
        ctx.answers.extend(ask(node) for node in ctx.nodes)
        return grad, grad, None


def check_will_execute() -> bool:
    """Uncached check: `torch._C._will_engine_execute_node` exists and, asked inside a backward
    about two view nodes (as `lean_conv` asks), says the one leading to the requested input
    runs and the other does not."""
    try:
        with torch.inference_mode(False), torch.enable_grad():
            x, y = torch.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)
            answers: list = []
            out = _Ask.apply(x.view_as(x), y.view_as(y), answers)
            torch.autograd.grad(out.sum(), [x])
        return len(answers) == 2 and answers[0] is True and answers[1] is False
    except Exception:
        return False
