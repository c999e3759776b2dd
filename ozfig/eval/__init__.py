"""Evaluate a GGUF: perplexity, KL divergence against another quant, answer quality."""
