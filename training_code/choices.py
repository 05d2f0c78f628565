"""The names a hyperparameter may take, free of torch so that validating them (the CLI, the pipeline) stays fast.

model.py, initializers.py and optimizers.py implement exactly these names; their tests check it.
"""

ACTIVATIONS = ("relu", "tanh", "selu", "sigmoid")
INITIALIZERS = (
    "zeros",
    "normal",
    "uniform",
    "xavier_uniform",
    "xavier_normal",
    "he_normal",
    "he_uniform",
    "lecun_normal",
)
# Picks the initializer that suits the activation (initializers.DEFAULT_FOR_ACTIVATION).
AUTO_INITIALIZER = "auto"
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
