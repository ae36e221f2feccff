"""Operator audit: which MindSpore primitives each model's compiled graphs use, with which dtypes, and
whether MindSpore declares them supported on CPU, GPU and Ascend (``tools/op_audit.py``,
``docs/devices.md``).

* :mod:`.graph_ops` compiles a cell in GRAPH_MODE and reads the primitives of the optimised graph;
* :mod:`.support` looks up MindSpore's own declaration for a primitive;
* :mod:`.cases` builds the graphs that are audited (inference, training step, AMP levels);
* :mod:`.report` checks the primitives against a target and prints the tables.
"""
