"""``defocus export``: a bundled (or user-trained) network as an ONNX file (:mod:`defocus.nets.onnx`)."""
