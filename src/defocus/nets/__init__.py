"""Neural networks: backbones with released-weight loading (:mod:`.backbones`) and defocus models (:mod:`.dffnet`)."""
