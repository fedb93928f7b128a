"""GreenMachine Lab: evolve zero-cost NAS proxies with genetic programming.

Layers, each importing only those before it:
spaces -> benchmark -> networks -> inputs/probe -> expressions -> evolution -> widgets.
(A space's network builder imports its own network module when it is called, not before.)
"""

__version__ = "0.1.0"
