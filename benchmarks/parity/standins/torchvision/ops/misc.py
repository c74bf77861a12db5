from .._refuse import refused

FrozenBatchNorm2d = refused("FrozenBatchNorm2d")
