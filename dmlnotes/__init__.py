"""dmlnotes: the shared package of the deep metric learning notebooks.

Modules: ``device``, ``distances``, ``losses``, ``miners``, ``data``, ``models``,
``training``, ``metrics``, ``plots``.
"""

__version__ = "0.1.0"
