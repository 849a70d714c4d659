# ruff: noqa: E501  (chat templates are kept as the real ones are written: one long line each)
"""A tiny random Llama with SmolLM2's tokenizer, and chat templates that offer tools in each
tool-call format, for tool-calling and reasoning tests through the real server.

The model is random (hidden size 64, 2 layers): what it writes is decided by the constraints
the tests give (tool_choice, regex), never by what it knows, so outputs are fast and
deterministic in shape. SmolLM2's tokenizer writes every format's markers as plain text, and
its end of turn `<|im_end|>` is the model's EOS.

The templates are short versions of the real ones, each with its format's markers, so the
server's auto-detection picks the format: Qwen2.5/Hermes `<tool_call>` (with Qwen3's
`enable_thinking`), Llama 3.1 (header tokens, the ipython role; its generation prompt opens
`<think>` as DeepSeek-R1's does), and Mistral v3 (`[AVAILABLE_TOOLS]`, `[TOOL_CALLS]`; it
refuses roles other than user, assistant and tool, as Mistral's templates do)."""

from __future__ import annotations

import os

import torch

HERMES_TEMPLATE = r"""
{%- if tools %}
{{- '<|im_start|>system\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>' }}
{%- for tool in tools %}{{- '\n' }}{{- tool | tojson }}{%- endfor %}
{{- '\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n' }}
{%- endif %}
{%- for message in messages %}
{%- if message.role == 'assistant' and message.tool_calls %}
{{- '<|im_start|>assistant' }}
{%- if message.content %}{{- '\n' + message.content }}{%- endif %}
{%- for tool_call in message.tool_calls %}
{{- '\n<tool_call>\n{"name": "' + tool_call.function.name + '", "arguments": ' + (tool_call.function.arguments | tojson) + '}\n</tool_call>' }}
{%- endfor %}
{{- '<|im_end|>\n' }}
{%- elif message.role == 'tool' %}
{{- '<|im_start|>user\n<tool_response>\n' + message.content + '\n</tool_response><|im_end|>\n' }}
{%- else %}
{{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' }}
{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
{{- '<|im_start|>assistant\n' }}
{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\n\n</think>\n\n' }}{%- endif %}
{%- endif %}
"""

LLAMA3_TEMPLATE = r"""
{{- '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n' }}
{%- if tools %}
{{- 'Environment: ipython\n\nRespond with a JSON for a function call in the format {"name": function name, "parameters": dictionary of argument name and its value}.\n\n' }}
{%- for t in tools %}{{- t | tojson }}{{- '\n\n' }}{%- endfor %}
{%- endif %}
{{- 'You are a helpful assistant.<|eot_id|>' }}
{%- for message in messages %}
{%- if message.role == 'assistant' and message.tool_calls %}
{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- for tool_call in message.tool_calls %}
{{- '{"name": "' + tool_call.function.name + '", "parameters": ' + (tool_call.function.arguments | tojson) + '}' }}
{%- endfor %}
{{- '<|eot_id|>' }}
{%- elif message.role == 'tool' %}
{{- '<|start_header_id|>ipython<|end_header_id|>\n\n' + message.content + '<|eot_id|>' }}
{%- else %}
{{- '<|start_header_id|>' + message.role + '<|end_header_id|>\n\n' + message.content + '<|eot_id|>' }}
{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\n\n<think>\n' }}{%- endif %}
"""

MISTRAL_TEMPLATE = r"""
{{- '<s>' }}
{%- for message in messages %}
{%- if message.role == 'user' %}
{%- if tools and loop.last %}{{- '[AVAILABLE_TOOLS] ' + (tools | tojson) + '[/AVAILABLE_TOOLS]' }}{%- endif %}
{{- '[INST] ' + message.content + '[/INST]' }}
{%- elif message.role == 'assistant' and message.tool_calls %}
{{- '[TOOL_CALLS] [' }}
{%- for tc in message.tool_calls %}
{{- '{"name": "' + tc.function.name + '", "arguments": ' + (tc.function.arguments | tojson) + ', "id": "' + tc.id + '"}' }}
{%- if not loop.last %}{{- ', ' }}{%- endif %}
{%- endfor %}
{{- ']</s>' }}
{%- elif message.role == 'assistant' %}
{{- message.content + '</s>' }}
{%- elif message.role == 'tool' %}
{{- '[TOOL_RESULTS] {"content": ' + (message.content | tojson) + ', "call_id": "' + message.tool_call_id + '"}[/TOOL_RESULTS]' }}
{%- else %}
{{- raise_exception('Only user, assistant and tool roles are supported!') }}
{%- endif %}
{%- endfor %}
"""

TEMPLATES = {"hermes": HERMES_TEMPLATE, "llama3": LLAMA3_TEMPLATE, "mistral": MISTRAL_TEMPLATE}


def save_tiny_chat_model(directory: str, tokenizer) -> str:
    """A random Llama over `tokenizer`'s vocabulary, saved with the tokenizer; one template
    file per format beside it (<format>.jinja)."""
    import transformers as tf

    config = tf.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        initializer_range=0.25,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = tf.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    for name, template in TEMPLATES.items():
        with open(os.path.join(directory, f"{name}.jinja"), "w") as f:
            f.write(template.strip())
    return directory


def render(tokenizer, name: str, messages: list[dict], tools=None, **kw) -> list[int]:
    """The prompt ids the server must build for `messages` with template `name`."""
    text = tokenizer.apply_chat_template(
        messages,
        chat_template=TEMPLATES[name].strip(),
        tools=tools,
        tokenize=False,
        add_generation_prompt=True,
        **kw,
    )
    return tokenizer.encode(text, add_special_tokens=False)
