"""Local runs: the pipeline definition executed on this machine, against an embedded AWS."""
