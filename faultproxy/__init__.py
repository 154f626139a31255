"""TCP fault proxy on loopback: latency with jitter, a bandwidth limit and connection resets."""
