"""Convert a PEFT LoRA fine-tune into a quantized GGUF: read, merge, write, quantize, verify."""
