import pytest
from sglang.model_loader import default_model_path, load_tokenizer


@pytest.fixture(scope="session")
def tokenizer():
    return load_tokenizer(default_model_path())
