from ._refuse import refused

ImageFolder = refused("ImageFolder")
