"""Errors that name what is wrong with an input and where."""


class CatalogInputError(ValueError):
    """A data file that cannot be ingested: names the file, the line when known, and what to do."""

    def __init__(self, path: object, problem: str, line: int | None = None) -> None:
        where = f"{path}" + (f", line {line}" if line is not None else "")
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.line = line
        self.problem = problem
