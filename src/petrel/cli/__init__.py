"""The ``petrel`` command line."""
