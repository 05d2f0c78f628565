"""The scripts that the jobs start: run_step.py (the processing steps' runner, uploaded on its own) and train.py (the
training entry point, at the code bundle's root). Never imported by the project's own code."""
