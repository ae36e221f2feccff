"""Shared pytest setup: CPU, GRAPH_MODE, fixed seed, before any test builds a network."""
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
TESTS = os.path.dirname(os.path.abspath(__file__))
if TESTS not in sys.path:  # tests/torch_ref/* reference modules
    sys.path.insert(0, TESTS)

import ms_osr  # noqa: E402,F401  (oneDNN ISA cap before mindspore)
from ms_osr.runtime import setup_runtime  # noqa: E402

setup_runtime(device="cpu", mode="graph", seed=0)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
