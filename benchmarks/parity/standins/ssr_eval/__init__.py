"""Stand-in for `ssr_eval` (its PyPI chain needs MySQL-python, which does not build).
Only audioldm_eval's LSD uses it; LSD is not in our metric set. See ../README.md."""
