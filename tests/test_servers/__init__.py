"""Tests of the test servers themselves (tests/servers/): each behaves as its docstring says."""
