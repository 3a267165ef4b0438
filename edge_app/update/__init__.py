"""Signed updates of the unit's app and models: bundles (:mod:`.bundle`), release folders with an atomic
``current`` switch, a health check and rollback (:mod:`.releases`), and ``python -m edge_app update`` (:mod:`.cli`).
"""
