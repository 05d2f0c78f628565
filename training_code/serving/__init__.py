"""The inference server of the serving image: SageMaker's hosting contract on uvicorn, the forward pass in numpy."""
