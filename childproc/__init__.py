"""Child processes that announce readiness with one stdout line (refserver, faultproxy)."""
