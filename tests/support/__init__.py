"""Helpers the tests share: Locust processes, end-to-end fixtures, raw frames, tools a test needs."""
