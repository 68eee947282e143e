"""One exception type for problems the user can fix; the CLI prints it as one line."""


class UserError(Exception):
    """Bad input: an unknown game, invalid settings, a corrupt or foreign file, a locked run."""
