"""The SGL standard library (.sgl modules), shipped as package data."""
