"""Tiny models: one torch thread avoids oversubscribing the 2 CI cores."""

import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)
