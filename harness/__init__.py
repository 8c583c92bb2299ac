"""distill-harness: gate a distilled student model against its teacher.

The core (everything but the pytest glue, ``plugin.py`` and ``items.py``) is plain Python:
it takes dataclasses and returns dataclasses and can be used from a script or a notebook.
"""

__version__ = "0.1.0"

#: Version of the cached prediction format; part of every cache key.
OUTPUT_FORMAT_VERSION = 1

__all__ = ["__version__", "OUTPUT_FORMAT_VERSION"]
