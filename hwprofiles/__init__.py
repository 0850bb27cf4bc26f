"""Device specs, the latency measurement protocol, profiling and stored device profiles."""
