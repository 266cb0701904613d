"""Helpers for tests and benchmarks (not needed at run time): generated TFLite models."""
