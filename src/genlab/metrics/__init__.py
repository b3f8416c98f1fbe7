"""Metrics and the pictures that go with them: features and samples in, numbers and PNGs out."""
