"""User-fixable errors of `bench` (re-exported from genau_core.errors, shared with `genau`)."""

from genau_core.errors import (
    CheckpointError,
    CheckpointFormatError,
    CheckpointMappingError,
    CheckpointNotFound,
    GenauBenchError,
    MissingFileError,
    OfficialCheckpointError,
    TokenizerError,
    UnknownNameError,
    UsageError,
    one_line,
)

__all__ = [
    "CheckpointError",
    "CheckpointFormatError",
    "CheckpointMappingError",
    "CheckpointNotFound",
    "GenauBenchError",
    "MissingFileError",
    "OfficialCheckpointError",
    "TokenizerError",
    "UnknownNameError",
    "UsageError",
    "one_line",
]
