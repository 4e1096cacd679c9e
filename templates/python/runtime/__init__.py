"""An OpenEdge/Baetyl function runtime for Python.

It serves the functions configured in etc/openedge/service.yml over gRPC
(Function.Call), following the runtime convention: see README.md.
"""
