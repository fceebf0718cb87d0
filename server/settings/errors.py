"""The one error every setting raises: the variable, and what is wrong with its value."""

from __future__ import annotations


class SettingsError(ValueError):
    """An environment variable holds a value the server cannot use."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem
