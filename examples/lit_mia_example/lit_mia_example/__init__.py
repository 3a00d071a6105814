"""An example lit_mia plug-in package: `tiny_mlp` (net) and `blobs` (dataset).

Installed with `pip install -e examples/lit_mia_example`; lit_mia finds both through the entry
points in pyproject.toml (groups `lit_mia.nets`, `lit_mia.datasets`), without any edit to
lit_mia: `lit-mia run single net.name=tiny_mlp data.name=blobs`.
"""
