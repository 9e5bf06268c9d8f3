"""The seed tutorial's tasks on scikit-learn's bundled handwritten digits (no download).

A multi-layer perceptron stands in for the tutorial's CNN; the shape is the same:
configurations for the model, the optimizer and the data, a ``Learn`` task whose output
(a ``LearnedModel``) feeds an ``Evaluate`` task that reports the accuracy.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

from xpm import Config, Meta, Param, PathGenerator, Task, field


class MLP(Config):
    """A multi-layer perceptron classifier."""

    n_layers: Param[int] = 2
    """Number of hidden layers"""
    hidden: Param[int] = 32
    """Units in each hidden layer"""
    activation: Param[str] = "relu"
    """Activation function: relu, tanh or logistic"""


class Optimizer(Config):
    """Adam with a fixed learning rate."""

    learning_rate: Param[float] = 1e-3
    """Initial learning rate"""
    verbose: Meta[bool] = False
    """Print the loss at each epoch (does not change the result)"""


class Digits(Config):
    """scikit-learn's 8x8 handwritten digits, split into train and test sets."""

    test_size: Param[float] = 0.25
    """Fraction of the images held out for evaluation"""
    seed: Param[int] = 0
    """Seed of the train/test split"""

    def split(self):  # type: ignore[no-untyped-def]
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        x, y = load_digits(return_X_y=True)
        return train_test_split(x / 16.0, y, test_size=self.test_size, random_state=self.seed)


class LearnedModel(Config):
    """A trained model: its configuration, its data and where its weights are."""

    model: Param[MLP]
    data: Param[Digits]
    path: Meta[Path]


class Learn(Task):
    """Trains the MLP on the training split and saves it."""

    model: Param[MLP]
    optimizer: Param[Optimizer]
    data: Param[Digits]
    epochs: Param[int] = 50
    """Maximum number of training epochs"""
    gpus: Meta[int] = 0
    """GPUs to use (the MLP runs on the CPU; kept to mirror the seed tutorial)"""
    threads: Meta[int] = 1
    """CPU threads for the linear algebra"""
    model_path: Meta[Path] = field(default_factory=PathGenerator("model.pkl"))

    def execute(self) -> None:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        x_train, _x_test, y_train, _y_test = self.data.split()
        classifier = MLPClassifier(
            hidden_layer_sizes=(self.model.hidden,) * self.model.n_layers,
            activation=self.model.activation,
            learning_rate_init=self.optimizer.learning_rate,
            max_iter=self.epochs,
            random_state=self.data.seed,
            verbose=self.optimizer.verbose,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            classifier.fit(x_train, y_train)
        for step, loss in enumerate(classifier.loss_curve_):
            self.report(loss=float(loss), step=step)
        with open(self.model_path, "wb") as fh:
            pickle.dump(classifier, fh)
        print(f"trained {self.model} for {classifier.n_iter_} epochs")

    def task_outputs(self, dep):  # type: ignore[no-untyped-def]
        return dep(LearnedModel(model=self.model, data=self.data, path=self.model_path))


class Evaluate(Task):
    """Reports the accuracy of a learned model on the test split."""

    model: Param[LearnedModel]

    def execute(self) -> None:
        with open(self.model.path, "rb") as fh:
            classifier = pickle.load(fh)
        _x_train, x_test, _y_train, y_test = self.model.data.split()
        accuracy = float(classifier.score(x_test, y_test))
        self.report(accuracy=accuracy)
        print(f"accuracy {accuracy:.4f}")
