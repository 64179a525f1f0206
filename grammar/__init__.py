"""The SGL grammar (sgl.lark), shipped as package data."""
