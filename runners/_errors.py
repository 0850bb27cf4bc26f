"""The one error type the CLI turns into a single line and exit code 2."""


class UserInputError(ValueError):
    """Bad input from the user: a config, a data file, a profile, a predictor, a CLI value."""
