import pytest
from server_process import ServerProcess
from sglang.model_loader import default_model_path, load_tokenizer


@pytest.fixture(scope="session")
def server():
    s = ServerProcess(
        "--max-total-tokens", "16384", "--max-running-requests", "64", "--enable-metrics"
    )
    yield s
    s.stop()


@pytest.fixture(scope="session")
def client(server):
    import openai

    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="none", max_retries=0)


@pytest.fixture(scope="session")
def tokenizer():
    return load_tokenizer(default_model_path())
