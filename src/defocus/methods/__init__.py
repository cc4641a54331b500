"""Method implementations. Each module holds one method; register it by one line in :mod:`defocus.registry`."""
