"""Helpers for Ferry connectors written in Python (componentize-py).

The generated bindings (`wit_world`) are the contract; this package only removes the
boilerplate every connector repeats: reading config keys (`config`), blocking HTTP over
`wasi:http` (`http`), and turning records into JSON (`records`).
"""
