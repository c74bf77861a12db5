"""Text-to-audio model plugins behind one interface (base.py) and a registry (registry.py)."""

from bench.plugins.base import InferenceSettings, PluginInfo, TextToAudioPlugin, clip_seed
from bench.plugins.registry import ENTRY_POINT_GROUP, available_names, create_plugin, get_plugin_class

__all__ = [
    "ENTRY_POINT_GROUP",
    "InferenceSettings",
    "PluginInfo",
    "TextToAudioPlugin",
    "available_names",
    "clip_seed",
    "create_plugin",
    "get_plugin_class",
]
