"""Reading official PyTorch checkpoint files and checking converted state dicts.

Shared by the CLAP backbones: every failure is a `CheckpointFormatError` whose message
starts with the file (or "state dict" when no file is involved) and says what is wrong.
"""

from __future__ import annotations

import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

import numpy as np
import torch
from torch import nn

# One checkpoint error type for every reader (genau_core.errors); the old name stays importable from here.
from genau_core.errors import CheckpointFormatError


def _numpy_safe_globals() -> list:
    """numpy reconstructors that training scripts pickle next to tensors (epoch counters,
    sampler state), under numpy 1 and numpy 2 module paths."""
    try:
        import numpy._core.multiarray as multiarray
    except ImportError:  # numpy < 2
        import numpy.core.multiarray as multiarray
    allowed: list = [np.ndarray, np.dtype]
    for fn_name in ("_reconstruct", "scalar"):
        fn = getattr(multiarray, fn_name)
        allowed += [(fn, f"numpy.core.multiarray.{fn_name}"), (fn, f"numpy._core.multiarray.{fn_name}")]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        allowed += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType")]
    return allowed


ALLOW_PICKLE_ENV = "GENAU_BENCH_ALLOW_PICKLE"  # the baselines' switch for plain pickle (read_checkpoint)


class _Inert:
    """Stands in for any pickled object outside the tensor allowlist (Lightning callbacks, OmegaConf
    hyper-parameters, ...): takes any arguments and state, runs nothing."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.state = state


_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),  # bytes of numpy scalars under pickle protocol 2
    ("torch", "Size"),
    ("torch", "device"),
    ("torch", "dtype"),
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
}


def _tensor_only_pickle_module():
    """A pickle module whose Unpickler resolves only tensor-rebuilding globals; every other class
    becomes an inert stand-in, so a training checkpoint loads without its training packages and
    without running code from the file."""
    import pickle
    import types

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if (
                (module, name) in _ALLOWED_GLOBALS
                or (module == "torch._utils" and name.startswith("_rebuild"))
                or (module == "torch" and name.endswith("Storage"))
            ):
                return super().find_class(module, name)
            if module.startswith("numpy") and name.endswith("DType"):
                return super().find_class(module, name)
            return type(name, (_Inert,), {"__module__": f"inert.{module}"})

    mod = types.ModuleType("tensor_only_pickle")
    mod.Unpickler = Unpickler
    mod.load = pickle.load
    mod.__name__ = "tensor_only_pickle"
    return mod


def load_checkpoint(
    path: str | Path,
    *,
    what: str,
    allow_pickle: bool = False,
    inert_objects: bool = False,
    pickle_hint: str | None = None,
):
    """The object a `torch.save`d file holds, read safely: the one place genau-bench calls `torch.load` on a file
    it did not write (`read_state_dict` takes the state dict out of it).

    Loads with `weights_only=True` (no code from the file is run; numpy's scalar / array
    reconstructors allowed). `inert_objects`: a training checkpoint that also pickles other objects
    (callbacks, hyper-parameters) is then read with an unpickler that rebuilds tensors only and
    replaces every other object by an inert stand-in (no code runs, no training packages needed).
    `allow_pickle`: plain pickle last, for a file you trust.

    Files in torch's zip format are memory-mapped: the tensors read the file's pages in place
    instead of being copied into fresh memory (LAION-CLAP + Cnn14: 1.07 -> 0.52 s to load and
    300-700 MB less peak RSS, measured). Legacy (pre-1.6) files are read the ordinary way."""
    path = Path(path)
    mmap = zipfile.is_zipfile(path)
    attempts: list[dict] = [dict(weights_only=True)]
    if inert_objects:
        attempts.append(dict(weights_only=False, pickle_module=_tensor_only_pickle_module()))
    if allow_pickle:
        attempts.append(dict(weights_only=False))
    errors = []
    for kwargs in attempts:
        try:
            with torch.serialization.safe_globals(_numpy_safe_globals()):
                return torch.load(path, map_location="cpu", mmap=mmap, **kwargs)
        except Exception as e:  # torch raises several types for foreign / corrupt / unsafe files
            errors.append(" ".join(f"{type(e).__name__}: {e}".split()))  # one line: torch's messages span several
    if pickle_hint is None:
        pickle_hint = (
            "" if allow_pickle else "(if the file is trusted and pickles other objects, pass allow_pickle=True)"
        )
    raise CheckpointFormatError(
        f"{path}: cannot read as a PyTorch checkpoint of {what} ({errors[-1][:300]}) {pickle_hint}".rstrip()
    )


def read_state_dict(
    path: str | Path,
    containers: Iterable[str],
    *,
    what: str,
    allow_pickle: bool = False,
    inert_objects: bool = False,
    pickle_hint: str | None = None,
) -> dict[str, torch.Tensor]:
    """The state dict inside a `torch.save`d file (read by `load_checkpoint`): the first of `containers`
    present as a key of the saved dict (e.g. "state_dict", "model"), else the saved dict itself when all
    its values are tensors. The one checkpoint reader of genau-bench."""
    path = Path(path)
    obj = load_checkpoint(
        path, what=what, allow_pickle=allow_pickle, inert_objects=inert_objects, pickle_hint=pickle_hint
    )
    if not isinstance(obj, Mapping):
        raise CheckpointFormatError(f"{path}: not a {what} checkpoint: holds a {type(obj).__name__}, not a dict")
    containers = tuple(containers)
    for key in containers:
        if key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
            break
    state = dict(obj)
    if not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        odd = [k for k, v in state.items() if not isinstance(v, torch.Tensor)][:5]
        raise CheckpointFormatError(
            f"{path}: not a {what} checkpoint: expected a state dict (or a dict holding one under "
            f"{' / '.join(repr(c) for c in containers) or 'no container key'}), found keys {sorted(map(str, obj))[:8]}"
            + (f"; non-tensor entries, e.g. {odd}" if odd else "")
        )
    return state


def strip_prefix(state: Mapping[str, torch.Tensor], prefix: str, *, source: str) -> dict[str, torch.Tensor]:
    """Remove `prefix` (e.g. DistributedDataParallel's "module.") when every key has it."""
    keys = list(state)
    n = sum(k.startswith(prefix) for k in keys)
    if n == 0:
        return dict(state)
    if n != len(keys):
        odd = [k for k in keys if not k.startswith(prefix)][:5]
        raise CheckpointFormatError(f"{source}: some keys start with {prefix!r} and some do not, e.g. {odd}")
    return {k[len(prefix) :]: v for k, v in state.items()}


def expected_state(model_factory: Callable[[], nn.Module]) -> dict[str, torch.Size]:
    """Key -> shape of the module the factory builds, built on the meta device (no memory)."""
    with torch.device("meta"):
        model = model_factory()
    return {k: v.shape for k, v in model.state_dict().items()}


def check_complete(
    converted: Mapping[str, torch.Tensor],
    expected: Mapping[str, torch.Size],
    *,
    unknown: list[str],
    source: str,
    what: str,
) -> None:
    """Raise if any source key was not understood, any expected key is missing, a key is
    not expected, or a shape differs; list a few of each."""
    problems = []
    if unknown:
        problems.append(f"{len(unknown)} unknown keys, e.g. {sorted(unknown)[:6]}")
    missing = [k for k in expected if k not in converted]
    if missing:
        problems.append(f"{len(missing)} missing weights, e.g. {missing[:6]}")
    extra = [k for k in converted if k not in expected]
    if extra:
        problems.append(f"{len(extra)} keys this configuration does not have, e.g. {extra[:6]}")
    shapes = [
        f"{k}: {tuple(converted[k].shape)} vs expected {tuple(expected[k])}"
        for k in expected
        if k in converted and tuple(converted[k].shape) != tuple(expected[k])
    ]
    if shapes:
        problems.append(f"{len(shapes)} shape mismatches, e.g. {shapes[:4]}")
    if problems:
        raise CheckpointFormatError(f"{source}: not a {what} checkpoint: " + "; ".join(problems))


@contextmanager
def parameters_on_meta() -> Iterator[None]:
    """Build modules whose parameters live on the meta device (no memory, no random init),
    while buffers are computed as usual: mel filter banks, windows and position ids are
    often non-persistent, so a checkpoint does not carry them. Only for a network whose every
    parameter is then assigned from a checkpoint (`load_state_dict(..., assign=True)`);
    `assert_materialized` checks that none was left behind."""
    original = nn.Module.register_parameter

    def register_on_meta(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        original(module, name, param)
        if param is not None and param.device.type != "meta":
            module._parameters[name] = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)

    nn.Module.register_parameter = register_on_meta
    try:
        yield
    finally:
        nn.Module.register_parameter = original


def assert_materialized(net: nn.Module, source: str, what: str) -> None:
    left = [k for k, v in [*net.named_parameters(), *net.named_buffers()] if v.device.type == "meta"]
    if left:
        raise CheckpointFormatError(
            f"{source}: not a {what} checkpoint: {len(left)} weights not in the file, e.g. {left[:5]}"
        )


def build_on_meta(factory: Callable[[], nn.Module]) -> nn.Module:
    """The network with parameters on the meta device and buffers computed (see
    `parameters_on_meta`); `state_shapes(net)` gives the keys a checkpoint must supply and
    `materialize` takes them."""
    with parameters_on_meta():
        return factory()


def state_shapes(net: nn.Module) -> dict[str, torch.Size]:
    """Key -> shape of the network's state dict (works on meta parameters)."""
    return {k: v.shape for k, v in net.state_dict().items()}


def materialize(net: nn.Module, state: Mapping[str, torch.Tensor], source: str | Path, what: str) -> nn.Module:
    """Take the checkpoint's tensors as they are into a `build_on_meta` network (no second copy
    in memory): strict key and shape matching, errors name the file."""
    contiguous = {k: v.contiguous() for k, v in state.items()}
    load_state_dict_exact(net, contiguous, Path(source), what, assign=True)
    assert_materialized(net, str(source), what)
    return net


def build_from_state(
    factory: Callable[[], nn.Module], state: Mapping[str, torch.Tensor], source: str | Path, what: str
) -> nn.Module:
    """Build the network without initialising its parameters and take the checkpoint's tensors."""
    return materialize(build_on_meta(factory), state, source, what)


def load_state_dict_exact(
    net: nn.Module, state: dict[str, torch.Tensor], path: Path, what: str, *, assign: bool = False
) -> None:
    """Load with strict key and shape matching; any mismatch is an error naming the file.
    (torch's own loader, so BatchNorm's legacy handling of `num_batches_tracked` applies.)"""
    try:
        result = net.load_state_dict(state, strict=False, assign=assign)
    except RuntimeError as e:  # shape mismatches; torch's message spans several lines
        raise CheckpointFormatError(f"{path}: not a {what} checkpoint: {' '.join(str(e).split())}") from None
    if result.missing_keys or result.unexpected_keys:
        parts = []
        if result.missing_keys:
            parts.append(f"{len(result.missing_keys)} missing keys, e.g. {result.missing_keys[:5]}")
        if result.unexpected_keys:
            parts.append(f"{len(result.unexpected_keys)} unexpected keys, e.g. {result.unexpected_keys[:5]}")
        raise CheckpointFormatError(f"{path}: not a {what} checkpoint: " + "; ".join(parts))
