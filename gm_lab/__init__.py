"""GreenMachine Lab: evolve zero-cost NAS proxies with genetic programming.

Layers, each importing only those before it:
benchmark -> networks -> inputs/probe -> expressions -> evolution -> widgets.
"""

__version__ = "0.1.0"
