"""sgdtui: a terminal playground for stochastic gradient descent."""

__version__ = "0.1.0"
