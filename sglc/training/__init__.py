"""Training the embedded default model: data, tokenizer, training loop."""
