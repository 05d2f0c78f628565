"""SageMaker's entry point for training: the code bundle's root holds this file beside the training_code package."""

from training_code.train import main

if __name__ == "__main__":
    main()
