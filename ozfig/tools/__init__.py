"""Tool calls (OpenAI's `tools`): how a model is told of its tools and how its calls are read.

`formats` knows the call syntaxes (Llama 3.x JSON and `<|python_tag|>`, Hermes/Qwen
`<tool_call>`, Mistral `[TOOL_CALLS]`, and ozfig's generic one for templates that take no
tools), `prompt` puts tools, calls and results into the messages a template renders,
`grammar` builds the grammar that makes a call well-formed (the lazy one for `auto`), and
`parser` reads calls out of the answer as it streams. Model-free: the engine and the
server use them.
"""
