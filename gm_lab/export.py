"""Turn a proxy expression into something that scores networks, without the lab around it.

    from gm_lab.export import make_scorer, to_python

    score = make_scorer("mean(log(snip_l)) + 0.5 * log(naswot)")
    score(net, images, labels)            # any torch classifier, a float (NaN: undefined)
    print(to_python("mean(log(snip_l))")) # the same, as the source of a standalone module

`make_scorer` probes the network with `gm_lab.probe.probe.probe_network` (every per-layer
statistic, and only the classic proxies the expression reads) and evaluates the expression on
that one record, converted to arrays exactly as the probe cache converts records
(`gm_lab.probe.cache.records_to_arrays`): a NATS-Bench network scores as its cached probe does
in a search (same seed, same batch). `to_python` writes the source of a small module defining
`def proxy(net, images, labels) -> float:` that does the same with gm_lab's probe and expression
modules; it carries the expression as text, parsed by `gm_lab.expressions.parse` when the module
is imported, never as generated code.

Both score the first `batch_size` images given (64 by default, the probe's batch size, so
evolved expressions see inputs like those they were selected on); the Gaussian batch and Zen's
noise come from `seed`; the probe runs with one torch thread, as the lab's probe workers do,
because another thread count rounds differently (see `probe_network`'s `threads`).
"""

from __future__ import annotations

import builtins
import keyword
import re
import textwrap
from collections.abc import Iterable

from deap import gp
from torch import Tensor, nn

from gm_lab.expressions import check_tree, evaluate, parse, proxy_names, to_text
from gm_lab.probe.cache import records_to_arrays
from gm_lab.probe.probe import probe_network, resolve_proxies
from gm_lab.probe.record import ProbeRecord

ExpressionLike = str | gp.PrimitiveTree

# Characters of canonical expression text: names, numbers, operators, parentheses, commas.
_SAFE_TEXT = re.compile(r"[A-Za-z0-9_.+\-*/(), ]*")
# Names the generated module uses: a function of that name would shadow them.
_RESERVED = frozenset(
    {"EXPRESSION", "TREE", "PROXIES", "BATCH_SIZE", "SEED", "THREADS", "evaluate", "parse"}
    | {"probe_network", "records_to_arrays", *dir(builtins)}
)
_LINE = 100  # the project's line length: the generated source passes its ruff settings


def expression_tree(expr: ExpressionLike) -> gp.PrimitiveTree:
    """The tree of `expr`: text is parsed, a tree is checked (ExpressionError if invalid)."""
    if isinstance(expr, str):
        return parse(expr)
    if isinstance(expr, gp.PrimitiveTree):
        check_tree(expr)
        return gp.PrimitiveTree(list(expr))
    raise TypeError(f"an expression is text or a gp.PrimitiveTree, not {type(expr).__name__}")


def proxies_used(expr: ExpressionLike) -> tuple[str, ...]:
    """The proxies `expr` reads, in registry order."""
    names = {node.name for node in expression_tree(expr) if node.arity == 0}
    return tuple(name for name in proxy_names() if name in names)


def first_batch(images: Tensor, labels: Tensor, batch_size: int) -> tuple[Tensor, Tensor]:
    """The first `batch_size` images and labels; ValueError when fewer are given (scores depend
    on the batch size, so a smaller batch would not be comparable)."""
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if len(images) < batch_size:
        raise ValueError(f"the scorer needs at least {batch_size} images, got {len(images)}")
    return images[:batch_size], labels[:batch_size]


def score_record(expr: ExpressionLike, record: ProbeRecord) -> float:
    """The expression's value on one probe record (NaN where it is not finite)."""
    return float(evaluate(expression_tree(expr), records_to_arrays([record]))[0])


class Scorer:
    """A proxy expression ready to score networks: `scorer(net, images, labels) -> float`.

    `probe(net, images, labels)` gives the record the score is computed from. Attributes:
    `tree`, `text` (canonical), `batch_size`, `seed`, `threads`, `proxies` (the classic
    proxies probed).
    """

    def __init__(
        self,
        expr: ExpressionLike,
        *,
        batch_size: int = 64,
        seed: int = 0,
        proxies: bool | Iterable[str] | None = None,
        threads: int | None = 1,
    ) -> None:
        _check_settings(batch_size, seed)
        self.tree = expression_tree(expr)
        self.text = to_text(self.tree)
        self.batch_size = batch_size
        self.seed = seed
        self.threads = threads
        extra = resolve_proxies(proxies)
        used = proxies_used(self.tree)
        self.proxies = tuple(n for n in proxy_names() if n in used or n in extra)

    def __repr__(self) -> str:
        return f"Scorer({self.text!r}, batch_size={self.batch_size}, seed={self.seed})"

    def probe(self, net: nn.Module, images: Tensor, labels: Tensor) -> ProbeRecord:
        """The probe record of `net` on the first `batch_size` images (net is not modified)."""
        batch = first_batch(images, labels, self.batch_size)
        return probe_network(net, batch, proxies=self.proxies, seed=self.seed, threads=self.threads)

    def __call__(self, net: nn.Module, images: Tensor, labels: Tensor) -> float:
        return score_record(self.tree, self.probe(net, images, labels))


def make_scorer(
    expr: ExpressionLike,
    *,
    batch_size: int = 64,
    seed: int = 0,
    proxies: bool | Iterable[str] | None = None,
    threads: int | None = 1,
) -> Scorer:
    """A callable `(net, images, labels) -> float` scoring any torch classifier with `expr`.

    The expression is parsed and checked now (ExpressionError, with its position, if it is
    malformed). Each call probes a copy of `net` at its current weights on the first
    `batch_size` of `images` (float [N, C, H, W], normalised as in training; `labels` int64
    [N]), computing every statistic and the classic proxies the expression reads, plus
    `proxies` (True: all; they show in `Scorer.probe`'s record). Higher scores predict higher
    accuracy for an evolved proxy; NaN when the expression is undefined for the network (e.g.
    a proxy it reads is unavailable for that network: see `probe_network`). `threads`: torch
    threads during the probe (1, as the lab's probe workers, reproduces cached probes exactly;
    None: the caller's setting).
    """
    return Scorer(expr, batch_size=batch_size, seed=seed, proxies=proxies, threads=threads)


def to_python(
    expr: ExpressionLike, name: str = "proxy", *, batch_size: int = 64, seed: int = 0
) -> str:
    """The source of a standalone module defining `def <name>(net, images, labels) -> float:`.

    The module imports gm_lab's probe and expression modules, parses the expression's
    canonical text once when imported, and scores a network exactly as
    `make_scorer(expr, batch_size=batch_size, seed=seed)` does. Write it to a .py file and
    import it; the expression is in the function's docstring and in `EXPRESSION`.
    """
    _check_settings(batch_size, seed)
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError(f"name must be a Python identifier, got {name!r}")
    if name in _RESERVED or name.startswith("__"):
        raise ValueError(f"name {name!r} is used by the generated module; choose another")
    tree = expression_tree(expr)
    text = to_text(tree)
    if not _SAFE_TEXT.fullmatch(text):  # canonical text never holds quotes or backslashes
        raise ValueError(f"unexpected characters in the expression text {text!r}")
    used = proxies_used(tree)
    shown = "\n".join(textwrap.wrap(text, _LINE - 8, break_long_words=True, break_on_hyphens=False))
    return f'''"""A zero-cost proxy exported from gm_lab by gm_lab.export.to_python.

Expression:

{textwrap.indent(shown, "    ")}

Usage, with an untrained torch classifier `net`, at least {batch_size} images (float
[N, C, H, W], normalised as in training) and their int64 labels:

    from <this module> import {name}
    score = {name}(net, images, labels)

Needs gm_lab installed; nothing else of the lab (no benchmark, no probe cache).
"""

from gm_lab.expressions import evaluate, parse
from gm_lab.probe.cache import records_to_arrays
from gm_lab.probe.probe import probe_network

{_assignment("EXPRESSION", text)}
TREE = parse(EXPRESSION)  # checked once, when this module is imported
# the classic proxies the expression reads
{_tuple_assignment("PROXIES", used)}
BATCH_SIZE = {batch_size}  # the first BATCH_SIZE images are scored
SEED = {seed}  # the probe's Gaussian batch and Zen's noise
THREADS = 1  # torch threads while probing: as the lab's probe workers, so scores match its cache


def {name}(net, images, labels) -> float:
    """Score `net` with the proxy below (higher predicts higher accuracy; NaN: undefined).

{textwrap.indent(shown, "        ")}

    Probes a copy of `net` on the first BATCH_SIZE of `images` and `labels` (its weights are
    not changed) and evaluates the expression on that probe.
    """
    if len(images) < BATCH_SIZE or len(labels) != len(images):
        raise ValueError(
            f"the proxy needs at least {{BATCH_SIZE}} images and one label each, got "
            f"{{len(images)}} images and {{len(labels)}} labels"
        )
    batch = (images[:BATCH_SIZE], labels[:BATCH_SIZE])
    record = probe_network(net, batch, proxies=PROXIES, seed=SEED, threads=THREADS)
    return float(evaluate(TREE, records_to_arrays([record]))[0])
'''


def _assignment(variable: str, text: str) -> str:
    """`variable = "text"`, as one line or as implicit concatenation within the line length."""
    line = f'{variable} = "{text}"'
    if len(line) <= _LINE:
        return line
    width = _LINE - 8
    chunks = [text[i : i + width] for i in range(0, len(text), width)]
    return f"{variable} = (\n" + "".join(f'    "{c}"\n' for c in chunks) + ")"


def _tuple_assignment(variable: str, items: tuple[str, ...]) -> str:
    """`variable = ("a", "b")` as ruff formats it: one line if it fits, else one item a line."""
    quoted = [f'"{item}"' for item in items]
    one = "(" + ", ".join(quoted) + ("," if len(quoted) == 1 else "") + ")"
    if len(f"{variable} = {one}") <= _LINE:
        return f"{variable} = {one}"
    return f"{variable} = (\n" + "".join(f"    {q},\n" for q in quoted) + ")"


def _check_settings(batch_size: int, seed: int) -> None:
    for what, value, low in (("batch_size", batch_size, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{what} must be an int >= {low}, got {value!r}")
