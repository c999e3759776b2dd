"""ozfig: a self-hosted chat server for a fine-tuned Llama GGUF, and the tool that makes that GGUF."""

__version__ = "0.1.0"
