"""Minimal Django settings for tests/servers/django_channels.py: no database, hosts as in the Channels tutorial."""

SECRET_KEY = "test-only-not-secret"  # noqa: S105 - a throwaway key for a loopback test server
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
