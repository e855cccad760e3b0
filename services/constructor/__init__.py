"""The Task Graph Constructor: complex requests become executable, assigned task graphs.
``taskloom.constructor.plan`` plans without running; ``__main__`` runs the bus service."""
