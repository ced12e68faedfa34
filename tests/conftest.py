import os
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def test_assets() -> Path:
    """Real pretrained weights from ../shared/tools/build-whisper-base, for tests marked real_model."""
    root = os.environ.get("ASRCTL_TEST_ASSETS")
    if not root or not (Path(root) / "whisper-base-hf").is_dir():
        pytest.skip("real weights not built: run ../shared/tools/build-whisper-base DIR and set ASRCTL_TEST_ASSETS=DIR")
    return Path(root)
