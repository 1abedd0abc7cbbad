"""Loading a user's model file (.pt2, .onnx, pickled module, state dict) as a convertible module."""
