"""How a `bench` command sets up its own process, in one place, and what it did (for the results record).

Three process-wide choices change speed or memory, not the numbers (the CPU kernels change float32 rounding
only: <= 1.3e-6 relative, measured), and each has an opt-out:

- faster float32 CPU kernels for backbone inference, applied by `bench.metrics.backbones._cpu_kernels`
  when a network is installed: GENAU_BENCH_CPU_KERNELS = `fast` (unset) | `default`;
- glibc keeps large freed blocks in the heap, applied once at command start by
  `bench.allocator.keep_large_blocks_in_heap`: GENAU_BENCH_MALLOC = `fast` (unset) | `default`;
- the process ends without module teardown after the command returned normally, applied by
  `bench.cli.console_main`: GENAU_BENCH_FAST_EXIT = `1` (unset) | `0`.

`apply_process_policy(command)` is the one function every command goes through (`bench.cli.main` calls it
after parsing, before the command runs): for a command whose `CommandPolicy` uses them it checks the
variables (a misspelt value is one `UsageError` line, before any work), applies the choices and returns
what was applied. `current_policy()` gives the same dict to whoever writes a results record
(`bench run`: `bench.harness.results_record`; `bench score`: `bench.cli.cmd_score`); outside a command
(library use, tests) it says that no command applied anything and which kernels the environment selects.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from bench.errors import UsageError

CPU_KERNELS_ENV = "GENAU_BENCH_CPU_KERNELS"  # = bench.metrics.backbones._cpu_kernels.ENV_VAR
MALLOC_ENV = "GENAU_BENCH_MALLOC"  # = bench.allocator.ENV_VAR
FAST_EXIT_ENV = "GENAU_BENCH_FAST_EXIT"
ENV_VARS = (CPU_KERNELS_ENV, MALLOC_ENV, FAST_EXIT_ENV)
_MALLOC_VALUES = ("fast", "default")
_FAST_EXIT_VALUES = ("1", "0")


@dataclass(frozen=True)
class CommandPolicy:
    """What a command asks of its process. Only the scoring commands embed audio (CPU kernels, large
    heap blocks) and end with a torch/transformers/librosa teardown worth skipping (about 1.2 s)."""

    cpu_kernels: bool = False
    heap_large_blocks: bool = False
    fast_exit: bool = False


SCORING = CommandPolicy(cpu_kernels=True, heap_large_blocks=True, fast_exit=True)
COMMAND_POLICIES: dict[str, CommandPolicy] = {"score": SCORING, "run": SCORING}
NOTHING = CommandPolicy()

_applied: dict | None = None


def apply_process_policy(command: str) -> dict:
    """Check the three environment variables, apply the `command`'s policy to this process and return what
    was applied: {"command", "cpu_kernels", "allocator", "fast_exit", "env"} (see `current_policy`)."""
    global _applied
    from bench import allocator

    policy = COMMAND_POLICIES.get(command, NOTHING)
    unused = f"not applied (`bench {command}` embeds no audio)"
    # Every variable the command uses is checked before anything is applied.
    kernels = _cpu_kernels_mode() if policy.cpu_kernels else unused  # UsageError naming the variable
    malloc = (
        _choice(
            MALLOC_ENV,
            _MALLOC_VALUES,
            "fast",
            "'fast' (the default: keep large freed blocks in the heap) or 'default' (glibc's own thresholds)",
        )
        if policy.heap_large_blocks
        else None
    )
    fast_exit = (
        _choice(
            FAST_EXIT_ENV,
            _FAST_EXIT_VALUES,
            "1",
            "'1' (the default: end scoring commands without module teardown) or '0' (the ordinary exit)",
        )
        if policy.fast_exit
        else "0"
    )
    if malloc is None:
        heap = unused
    elif malloc == "default":
        heap = f"allocator defaults ({MALLOC_ENV}=default)"
    else:
        heap = allocator.keep_large_blocks_in_heap()
    _applied = {
        "command": command,
        "cpu_kernels": kernels,
        "allocator": heap,
        "fast_exit": fast_exit == "1",
        "env": _env(),
    }
    return current_policy()


def current_policy() -> dict:
    """What this process runs under: the dict `apply_process_policy` returned, or, when no command applied
    one (library use), {"command": None, the kernels the environment selects, "allocator": what
    `bench.allocator` did if anything, "fast_exit": False, "env"}."""
    if _applied is not None:
        return {**_applied, "env": dict(_applied["env"])}
    from bench import allocator

    return {
        "command": None,
        "cpu_kernels": _cpu_kernels_mode(),
        "allocator": allocator._applied or "not applied (no bench command set up this process)",
        "fast_exit": False,
        "env": _env(),
    }


def fast_exit_applies() -> bool:
    """Whether the command that ran asked to end the process without module teardown."""
    return bool(_applied and _applied["fast_exit"])


def _cpu_kernels_mode() -> str:
    """ "fast" or "default" (the kernels module reads the same variable when a backbone installs its network).
    Imported here: it imports torch, which `bench models` / `bench splits` never need."""
    from bench.metrics.backbones._cpu_kernels import requested_mode

    return requested_mode()


def _choice(name: str, allowed: tuple[str, ...], unset: str, meaning: str) -> str:
    value = os.environ.get(name, "").strip().lower() or unset
    if value not in allowed:
        raise UsageError(
            f"environment variable {name}={os.environ.get(name)!r}: expected {meaning}; unset it or set one of those"
        )
    return value


def _env() -> dict[str, str | None]:
    """The three variables as set (None: unset), so a record says what was asked, not only what ran."""
    return {name: os.environ.get(name) for name in ENV_VARS}
