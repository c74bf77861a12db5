"""genau-bench: comparable text-to-audio benchmarks."""

from bench.protocol import PROTOCOL, PROTOCOL_VERSION

__version__ = "0.1.0"
__all__ = ["PROTOCOL", "PROTOCOL_VERSION", "__version__"]
