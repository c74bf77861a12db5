from ._refuse import InterpolationMode, refused  # noqa: F401

Normalize = refused("Normalize")
Compose = refused("Compose")
RandomResizedCrop = refused("RandomResizedCrop")
ToTensor = refused("ToTensor")
Resize = refused("Resize")
CenterCrop = refused("CenterCrop")
