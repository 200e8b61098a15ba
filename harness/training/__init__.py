"""What one trial trains and how: the two methods as HyperModels, the head, optimizers, callbacks,
metrics and plots, the feature cache, the data trials read, the seed (imports: backbones, data,
config, errors)."""

from harness.training._feature_cache import FeatureKey, Features
from harness.training._methods import METHODS, FeatureExtraction, FineTune
from harness.training._prepare import Network, Prepared, build_network, cached_features, prepare
from harness.training._seeding import seed_everything
from harness.training._trial_data import VariantData, TrialData

__all__ = ["METHODS", "FeatureExtraction", "FeatureKey", "Features", "FineTune", "Network", "Prepared",
           "VariantData", "TrialData", "build_network", "cached_features", "prepare", "seed_everything"]
