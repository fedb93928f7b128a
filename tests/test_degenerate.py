"""Degenerate scores get a reason everywhere they are shown, naming where NaN comes from."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from gm_lab.expressions import explain_degenerate, parse
from gm_lab.metrics import degenerate_reason
from tests.test_expressions import PAD, tiny_arrays


@pytest.mark.parametrize(
    ("scores", "reason"),
    [
        ([1.0, 2.0, 3.0], None),
        ([0.0, 0.0, 0.0], "constant over the sample (every architecture scores 0)"),
        ([np.nan, np.nan, np.inf], "NaN or infinite for all 3 architectures"),
        ([1.0, np.nan, 2.0, 3.0], "NaN or infinite for 1 of 4 architectures"),
        ([4.0, np.nan, 4.0], "constant over the 2 architectures with a finite score (4); NaN"),
        ([5.0], "1 architecture(s): nothing to rank"),
    ],
)
def test_degenerate_reason(scores, reason) -> None:
    found = degenerate_reason(np.array(scores))
    assert (found is None) if reason is None else found.startswith(reason)


def test_constant_expression_is_explained() -> None:
    arrays = tiny_arrays(PAD)
    reason = explain_degenerate(parse("naswot - naswot"), arrays)
    assert reason == "constant over the sample (every architecture scores 0)"
    assert explain_degenerate(parse("naswot + zen"), arrays) is None


def test_nan_is_traced_to_the_terminal_that_holds_it() -> None:
    arrays = tiny_arrays(PAD)
    arrays.proxies["zen"][1] = np.nan
    reason = explain_degenerate(parse("naswot * zen"), arrays)
    assert reason == (
        "NaN or infinite for 1 of 3 architectures (the proxy 'zen' is NaN or infinite for 1)"
    )
    arrays.layer_stats["snip_l"][2, 1] = np.nan  # a real layer (architecture 2 has 3)
    reason = explain_degenerate(parse("naswot + mean(snip_l)"), arrays)
    assert reason is not None and "the per-layer statistic 'snip_l'" in reason


def test_padding_is_not_taken_for_nan() -> None:
    arrays = tiny_arrays(np.nan)  # padding NaN, as the cache writes it: no reason to complain
    assert explain_degenerate(parse("naswot + mean(log(snip_l))"), arrays) is None


def gm_lab(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "gm_lab.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


SMALL = ["--n", "6", "--sample", "random", "--batch-size", "8", "--workers", "0"]


@pytest.mark.slow
def test_score_explains_a_constant_expression_and_takes_a_leading_minus() -> None:
    out = gm_lab("score", "naswot - naswot", *SMALL, "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["kendall"] is None
    assert result["degenerate"] == "constant over the sample (every architecture scores 0)"
    text = gm_lab("score", "naswot - naswot", *SMALL)
    assert "constant over the sample" in text.stdout
    plain = json.loads(gm_lab("score", "naswot", *SMALL, "--json").stdout)
    minus = json.loads(gm_lab("score", "-naswot", *SMALL, "--json").stdout)
    assert minus["proxy"] == "-naswot" and minus["kendall"] == pytest.approx(-plain["kendall"])
    assert minus["degenerate"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--n", "1"], "must be at least 3"),
        (["--n", "20000"], "only 14,625 have ground truth outside the final test set"),
        (
            ["--n", "10", "--bins", "1000", "--sample", "stratified"],
            "takes no architecture per bin",
        ),
    ],
)
def test_impossible_sample_sizes_are_one_line_errors(args: list[str], message: str) -> None:
    out = gm_lab("score", "naswot", *args)
    assert out.returncode == 2 and message in out.stderr.strip().splitlines()[-1]
    assert "Traceback" not in out.stderr
