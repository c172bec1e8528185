"""The `lonewatch` command and the composition of the parts it runs.

This is the top of the dependency graph: it may import every part
(contract, gateway, dashboard, simulator, bench), and nothing imports it.
"""
