"""The allowed values of the sweep settings that name one of a few things (apart, so that the
declarations, the search space and the sweep-file helpers share them without importing each other)."""

METHODS = ("feature-extraction", "fine-tune")
TUNERS = ("random", "bayesian", "hyperband")
PREPROCESSING = ("backbone", "rescale")
BACKBONES = ("vgg16", "mobilenet_v2")
PRECISIONS = ("auto", "float32", "bfloat16")
POOLINGS = ("flatten", "avg")  # the head's first layer: the tutorial's Flatten, or global average pooling
FLIPS = ("horizontal", "vertical", "horizontal_and_vertical", "none")
