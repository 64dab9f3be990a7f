"""Exception types raised by microglia.

Every error that a user can cause with a file, an option or a setting derives from
`MicrogliaError`, so the command line can print its message without a traceback.
"""


class MicrogliaError(Exception):
    """Base class of the errors that microglia raises for bad input or failed runs."""


class DataError(MicrogliaError):
    """A data file or array is missing, malformed, or fails its checksum."""


class ConfigError(MicrogliaError):
    """A configuration value is invalid."""


class CheckpointError(MicrogliaError):
    """A checkpoint or weights file cannot be read or does not fit the network."""


class TrainingDivergedError(MicrogliaError):
    """The loss or a weight became NaN or infinite during training."""


class TrainingInterrupted(Exception):
    """A signal stopped training after a checkpoint was saved; the run can be resumed.

    Not a `MicrogliaError`: nothing was wrong with the input.
    """

    def __init__(self, message: str, signal_number: int):
        super().__init__(message)
        self.signal_number = signal_number

    def __reduce__(self):
        # Default pickling passes only the message to __init__. `microglia compare` sends this
        # error from its worker processes to the main process.
        return type(self), (str(self), self.signal_number)
