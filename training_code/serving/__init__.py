"""The inference server of the serving image: SageMaker's hosting contract on uvicorn, the forward pass in numpy."""

import os

# One worker process per core: BLAS threads inside each worker would only compete with the other workers.
# Read when numpy loads, so it is set before anything in this package imports numpy.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
