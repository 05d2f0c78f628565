"""The foundation of a stage: encryption key, buckets and execution roles."""
