"""`python -m pipelines.cli`: the `mlops` console script."""

from pipelines.cli import main

main()
