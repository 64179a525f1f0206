"""The embedded default model: trained by `python -m sglc.training`, shipped as package data."""
