"""The engine: a frontend (tokenizer, detokenizer, request state) and a scheduler process."""
