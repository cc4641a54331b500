"""Method implementations. Each classic method is one module here, registered by one line in
:data:`defocus.registry.METHODS`; every learned network runs in :class:`.networks.NetworkDetector`, registered by the
``PRETRAINED`` entry at the end of its network's module (see :mod:`defocus.registry`)."""
