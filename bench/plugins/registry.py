"""Finding plugins: built-ins by module path, third-party ones through an entry-point group.

A third-party package adds models without touching ours:

    [project.entry-points."genau_bench.plugins"]
    my-model = "my_pkg.plugin:MyModelPlugin"

The entry point may name a `TextToAudioPlugin` subclass or a callable returning a list of them.
"""

from __future__ import annotations

import difflib
import importlib
from importlib.metadata import entry_points

from bench.errors import UnknownNameError
from bench.plugins.base import TextToAudioPlugin

ENTRY_POINT_GROUP = "genau_bench.plugins"

# name -> "module:Class"; imported lazily so `bench models` does not import every framework.
BUILTIN_PLUGINS: dict[str, str] = {
    "audioldm-l": "bench.plugins.audioldm:AudioLDMLarge",
    "audioldm-l-tiny": "bench.plugins.audioldm:AudioLDMTiny",
    "audioldm2-l": "bench.plugins.audioldm2:AudioLDM2Large",
    "audioldm2-l-tiny": "bench.plugins.audioldm2:AudioLDM2Tiny",
    "tango": "bench.plugins.tango:Tango",
    "tango-tiny": "bench.plugins.tango:TangoTiny",
    "tango2": "bench.plugins.tango:Tango2",
    "tango2-tiny": "bench.plugins.tango:Tango2Tiny",
    "make-an-audio": "bench.plugins.make_an_audio:MakeAnAudio",
    "make-an-audio-tiny": "bench.plugins.make_an_audio:MakeAnAudioTiny",
    "make-an-audio-2": "bench.plugins.make_an_audio_2:MakeAnAudio2",
    "make-an-audio-2-tiny": "bench.plugins.make_an_audio_2:MakeAnAudio2Tiny",
    "genau-tiny": "bench.plugins.genau:GenAuTiny",
    "genau-s": "bench.plugins.genau:GenAuSmall",
    "genau-l": "bench.plugins.genau:GenAuLarge",
    "genau-l-full-hq-data": "bench.plugins.genau:GenAuLargeHQ",
    "stable-audio-open": "bench.plugins.stable_audio_open:StableAudioOpen",
    "stable-audio-open-tiny": "bench.plugins.stable_audio_open:StableAudioOpenTiny",
    "tangoflux": "bench.plugins.tangoflux:TangoFlux",
    "tangoflux-tiny": "bench.plugins.tangoflux:TangoFluxTiny",
}

# Named by the protocol, implemented in their own issues; listed so users see what is coming.
PLANNED_PLUGINS: dict[str, str] = {}


class UnknownModelError(UnknownNameError):
    """An unknown or not yet implemented model name (a KeyError); the message suggests the closest names."""


def _load_object(target: str):
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def _entry_point_plugins() -> dict[str, type[TextToAudioPlugin]]:
    found: dict[str, type[TextToAudioPlugin]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        obj = ep.load()
        classes = obj() if callable(obj) and not isinstance(obj, type) else [obj]
        for cls in classes:
            if not (isinstance(cls, type) and issubclass(cls, TextToAudioPlugin)):
                raise TypeError(f"entry point {ep.name!r} ({ep.value}) did not give a TextToAudioPlugin subclass")
            found[cls.info.name] = cls
    return found


def available_names() -> list[str]:
    return sorted(set(BUILTIN_PLUGINS) | set(_entry_point_plugins()))


def get_plugin_class(name: str) -> type[TextToAudioPlugin]:
    if name in BUILTIN_PLUGINS:
        return _load_object(BUILTIN_PLUGINS[name])
    third_party = _entry_point_plugins()
    if name in third_party:
        return third_party[name]
    if name in PLANNED_PLUGINS:
        raise UnknownModelError(f"model {name!r} is not implemented yet ({PLANNED_PLUGINS[name]})")
    names = sorted(set(BUILTIN_PLUGINS) | set(third_party))
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownModelError(f"unknown model {name!r}.{hint} Known models: {', '.join(names)} (see `bench models`).")


def create_plugin(name: str, checkpoint: str | None = None, device: str = "cpu") -> TextToAudioPlugin:
    return get_plugin_class(name)(checkpoint=checkpoint, device=device)
