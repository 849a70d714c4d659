"""The HTTP server: OpenAI-compatible routes, SGLang's native routes, metrics, auth."""
