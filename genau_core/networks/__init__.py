"""Metric-backbone networks built from their published architectures, with official key maps.

One module per network family (network code, front end and the mapping from the official
checkpoint's key layout to ours). Nothing here imports `bench`: the backbone wrappers in
`bench.metrics.backbones` find, read and hash the files, then build these networks.
"""
