"""Reference WebSocket echo server with deliberate, switchable resource bugs."""
