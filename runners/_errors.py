"""The one error type the CLI turns into a single line and exit code 2, and the one way to raise it."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator


class UserInputError(ValueError):
    """Bad input from the user: a config, a data file, a profile, a predictor, a CLI value."""


@contextmanager
def user_errors(prefix: str = "", *, catch: tuple[type[Exception], ...] = (ValueError,)) -> Iterator[None]:
    """Turn a library's ValueError (or the `catch` types) raised inside the block into a
    UserInputError with the same message, after `prefix`; a UserInputError passes unchanged.

        with user_errors("bad [space] in config: "):
            space = SearchSpace.from_dict(data)
    """
    try:
        yield
    except UserInputError:
        raise
    except catch as exc:
        raise UserInputError(f"{prefix}{exc}") from None


__all__ = ["UserInputError", "user_errors"]
