"""JupyterLab widgets: a thin, live view on the engine (gm_lab.evolution, gm_lab.expressions).

Each widget works alone and inside `Lab`; none of the engine imports this package.
"""
