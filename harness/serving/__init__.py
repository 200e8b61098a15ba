"""The winner as users get it: one image-in network logged and registered in MLflow, loaded back to
name photos, exported to SavedModel or TFLite (imports: training, tracking, data, errors)."""

from harness.serving._export import Exported, export
from harness.serving._predict import Prediction, Predictions, load_winner, predict
from harness.serving._winner import inference_network, log_winner, register

__all__ = ["Exported", "Prediction", "Predictions", "export", "inference_network", "load_winner", "log_winner",
           "predict", "register"]
