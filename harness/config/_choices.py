"""The allowed values of the sweep settings that name one of a few things (apart, so that the
declarations, the search space and the sweep-file helpers share them without importing each other)."""

METHODS = ("feature-extraction", "fine-tune")
TUNERS = ("random", "bayesian", "hyperband")
PREPROCESSING = ("backbone", "rescale")
# every keras.applications image network (harness.backbones.REGISTRY describes each; a test keeps
# the two lists equal)
BACKBONES = ("vgg16", "vgg19", "resnet50", "resnet101", "resnet152", "resnet50_v2", "resnet101_v2",
             "resnet152_v2", "mobilenet", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
             *(f"efficientnet_b{i}" for i in range(8)), *(f"efficientnet_v2_b{i}" for i in range(4)),
             "efficientnet_v2_s", "efficientnet_v2_m", "efficientnet_v2_l",
             *(f"convnext_{s}" for s in ("tiny", "small", "base", "large", "xlarge")),
             "densenet121", "densenet169", "densenet201", "xception", "inception_v3", "inception_resnet_v2",
             "nasnet_mobile", "nasnet_large")
PRECISIONS = ("auto", "float32", "bfloat16")
POOLINGS = ("flatten", "avg")  # the head's first layer: the tutorial's Flatten, or global average pooling
FLIPS = ("horizontal", "vertical", "horizontal_and_vertical", "none")
