import numpy as np
import pytest


@pytest.fixture
def npy_pair(tmp_path):
    """A 40-example classification set as a memory-mappable .npy pair."""
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(40, 3)).astype(np.float32)
    targets = (np.arange(40) % 4).astype(np.int64)
    np.save(tmp_path / "inputs.npy", inputs)
    np.save(tmp_path / "targets.npy", targets)
    return tmp_path, inputs, targets
