"""The error family of genau-bench: one base class for every error a user can fix.

`GenauBenchError` is the base of every domain error in `genau_core` and `bench` (bad arguments,
files, settings, checkpoints, splits, run stores). A command line catches it in one place and
prints its message as one line (`error: ...`, exit status 1), never a traceback. The message
names the file, line or value, the reason, and what to do.

Domain errors keep the stdlib base their callers already catch (`ValueError`,
`FileNotFoundError`, `KeyError`, `RuntimeError`), e.g. `class SplitError(GenauBenchError,
ValueError)`. The checkpoint errors live here, at the bottom, so every reader of checkpoint files
(metric backbones, baselines, GenAu, AutoCap) raises the same types:

    GenauBenchError
    +-- UsageError (ValueError)                 an argument or setting that cannot work
    +-- MissingFileError (FileNotFoundError)    a file or folder the user has to provide
    |   +-- CheckpointNotFound                  a checkpoint file, with where it was looked for
    +-- UnknownNameError (KeyError)             an unknown model / backbone / protocol name
    +-- TokenizerError (ValueError)             a tokenizer that cannot be loaded or does not fit
    +-- SplitError (ValueError)                 a split / manifest / CSV / JSONL table that is missing or malformed
    +-- CheckpointError (ValueError)            a checkpoint file that does not hold the network
        +-- OfficialCheckpointError             an official release file (GenAu, AutoCap) or its
                                                settings yaml that we cannot load as published

`CheckpointFormatError` (the metric backbones' former name) and `CheckpointMappingError` (the
baselines' former name) are aliases of `CheckpointError`.
"""

from __future__ import annotations


class GenauBenchError(Exception):
    """A user-fixable error; `str(e)` is one line naming the file / line / value and what to do."""


class UsageError(GenauBenchError, ValueError):
    """A command-line argument or setting that cannot work (checked before any work starts)."""


class MissingFileError(GenauBenchError, FileNotFoundError):
    """A file or folder the user has to provide (a checkpoint, a split's files) is not there."""


class CheckpointNotFound(MissingFileError):
    """A checkpoint file is not where it was looked for; the message names the places and the flag."""


class UnknownNameError(GenauBenchError, KeyError):
    """An unknown name (model, backbone, protocol); the message suggests the closest known ones.

    `str()` is the message itself (a plain KeyError would print it quoted)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else type(self).__name__


class TokenizerError(GenauBenchError, ValueError):
    """A tokenizer that cannot be loaded, or does not fit the model's configuration; the message names
    its source (folder or hub id) and what to pass instead."""


class SplitError(GenauBenchError, ValueError):
    """A split's or manifest's files are missing or malformed (also any CSV / JSONL table read by
    `genau_core.tables`); the message names the file, line and what to do."""


class CheckpointError(GenauBenchError, ValueError):
    """A checkpoint that does not hold the expected network (unreadable file, unknown, missing or
    mis-shaped keys); the message starts with the file (or what was being loaded)."""


class OfficialCheckpointError(CheckpointError):
    """An official release file (or its settings yaml) that cannot be loaded as published: an
    unsupported option, a key without a mapping, a missing weight set."""


# The former names of the two checkpoint readers' errors (genau_core/checkpoint_io.py,
# genau_core/baselines/_state.py): one type now, so `except` clauses with either name catch both.
CheckpointFormatError = CheckpointError
CheckpointMappingError = CheckpointError


def one_line(error: BaseException) -> str:
    """The error's message on one line (a message is never cut, only its line breaks joined)."""
    return " ".join(part.strip() for part in str(error).splitlines() if part.strip()) or type(error).__name__
