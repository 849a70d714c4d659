"""Chat templates: our jinja rendering gives what transformers' apply_chat_template gives, the
role prefix/suffix split rebuilds the template's own rendering, and the GGUF metadata reader
agrees with the gguf library."""

from __future__ import annotations

import json

import pytest
from sglang.lang.chat_template import from_jinja, from_tokenizer, load_model_template

CHATML_DEFAULT_SYSTEM = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are helpful.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
LLAMA3_LIKE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] | trim + '<|eot_id|>' %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
ALTERNATING = (
    "{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant') }}{% endif %}"
    "[{{ message['role'] }}] {{ message['content'] }} {% endfor %}"
)
CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "Bye"},
]


def hf_tokenizer(template: str):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel({"<unk>": 0, "<s>": 1, "a": 2}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", unk_token="<unk>")
    tok.chat_template = template
    return tok


def assemble(template, messages) -> str:
    """The text a program builds: role prefix + content + suffix, message by message."""
    text = ""
    for i, m in enumerate(messages):
        prefix, suffix = template.role_parts(m["role"], messages[:i])
        text += prefix + m["content"] + suffix
    return text


@pytest.mark.parametrize("source", [CHATML_DEFAULT_SYSTEM, LLAMA3_LIKE])
@pytest.mark.parametrize("start", [0, 1])  # with and without the system message
def test_role_parts_rebuild_apply_chat_template(source, start):
    tok = hf_tokenizer(source)
    messages = CONVERSATION[start:]
    want = tok.apply_chat_template(messages, tokenize=False)
    assert assemble(from_tokenizer(tok), messages) == want
    assert assemble(from_jinja(source, bos_token="<s>"), messages) == want


def test_generation_prompt_is_the_assistant_prefix():
    tok = hf_tokenizer(CHATML_DEFAULT_SYSTEM)
    history = CONVERSATION[1:2]
    prefix, _ = from_jinja(CHATML_DEFAULT_SYSTEM).role_parts("assistant", history)
    with_prompt = tok.apply_chat_template(history, tokenize=False, add_generation_prompt=True)
    assert tok.apply_chat_template(history, tokenize=False) + prefix == with_prompt


def test_template_errors_name_the_roles():
    template = from_jinja(ALTERNATING)
    assert template.role_parts("user", []) == ("[user] ", " ")
    with pytest.raises(ValueError, match="must alternate"):
        template.role_parts("user", [{"role": "user", "content": "x"}])


def test_bos_is_reported_only_when_the_tokenizer_adds_it():
    assert from_jinja(LLAMA3_LIKE, "<s>").starts_with_bos("<s>hello")
    assert not from_jinja(LLAMA3_LIKE, "<s>", adds_bos=False).starts_with_bos("<s>hello")
    assert from_tokenizer(hf_tokenizer(LLAMA3_LIKE)).bos_token is None  # adds no BOS


def test_hf_directory_template(tmp_path):
    config = {
        "chat_template": [{"name": "default", "template": LLAMA3_LIKE}],
        "bos_token": {"content": "<s>"},
        "eos_token": "</s>",
    }
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    template = load_model_template(str(tmp_path))
    assert template.role_parts("user", []) == (
        "<s><|start_header_id|>user<|end_header_id|>\n\n",
        "<|eot_id|>",
    )
    (tmp_path / "tokenizer_config.json").write_text("{}")
    with pytest.raises(ValueError, match="no chat template"):
        load_model_template(str(tmp_path))
    assert load_model_template(str(tmp_path), override=CHATML_DEFAULT_SYSTEM).role_parts(
        "system", []
    ) == ("<|im_start|>system\n", "<|im_end|>\n")


def test_gguf_metadata_matches_the_gguf_library():
    from gguf import GGUFReader
    from sglang.lang.gguf_metadata import read_metadata
    from sglang.model_loader import DefaultModelMissing, default_model_path

    try:
        path = default_model_path()
    except DefaultModelMissing as e:
        pytest.skip(str(e))
    fields = GGUFReader(path).fields

    def string(key, i=0):
        f = fields[key]
        return bytes(f.parts[f.data[i]]).decode("utf-8")

    got = read_metadata(
        path,
        {"tokenizer.chat_template", "tokenizer.ggml.eos_token_id", "general.architecture"},
        {"tokenizer.ggml.tokens": {0, 2, 1000}},
    )
    assert got["tokenizer.chat_template"] == string("tokenizer.chat_template")
    assert got["general.architecture"] == string("general.architecture")
    eos = fields["tokenizer.ggml.eos_token_id"]
    assert got["tokenizer.ggml.eos_token_id"] == int(eos.parts[eos.data[0]][0])
    assert got["tokenizer.ggml.tokens"] == {
        i: string("tokenizer.ggml.tokens", i) for i in (0, 2, 1000)
    }
    template = load_model_template(path)
    assert template.role_parts("assistant", [{"role": "user", "content": "x"}])[0] == (
        "<|im_start|>assistant\n"
    )
