"""`backbone`, `unfreeze` and `alpha` as settings: one value or a searched list, read from the
sweep file and from repeated flags, and the variants (backbone x size x cut) they make."""

import keras_tuner as kt
import pytest

from harness.config import BACKBONES, load
from harness.errors import HarnessError
from harness.training._variants import Variant, declare, of_trial, variants


def test_backbone_and_unfreeze_lists_are_searched_settings():
    cfg = load(None, "fine-tune", {"backbone": ["mobilenet_v2", "efficientnet_b0"], "unfreeze": [1, 2],
                                   "image_size": [32, 48]})
    assert cfg.backbones == ("mobilenet_v2", "efficientnet_b0") and cfg.unfreezes == (1, 2)
    keys = variants(cfg)
    assert len(keys) == 8 and keys[0] == Variant("mobilenet_v2", 32, 1) and keys[-1] == Variant("efficientnet_b0", 48, 2)


def test_feature_extraction_reads_one_cut_whatever_unfreeze_lists():
    cfg = load(None, "feature-extraction", {"backbone": ["vgg16", "resnet50"], "unfreeze": [2, 1]})
    assert variants(cfg) == [Variant("vgg16", 150, 2), Variant("resnet50", 150, 2)]


def test_unfreeze_takes_a_layer_name_and_a_flag_text_number():
    assert load(None, "fine-tune", {"unfreeze": "block_14_add"}).unfreezes == ("block_14_add",)
    assert load(None, "fine-tune", {"unfreeze": ["2"]}).unfreezes == (2,)  # `--unfreeze 2`
    # a keras-tuner Choice holds one type: a list mixing a count and a name is all text
    assert load(None, "fine-tune", {"unfreeze": [1, "block_14_add"]}).unfreezes == ("1", "block_14_add")


@pytest.mark.parametrize("overrides, message", [
    ({"unfreeze": 0}, "unfreeze: must be a number of stages >= 1 or a layer name, got 0"),
    ({"unfreeze": 1.5}, "unfreeze: expected int or str, got float 1.5"),
    ({"backbone": ["vgg16", "resnet"]}, "backbone: 'resnet' is not one of"),
    ({"backbone": ["vgg16", "vgg16"]}, "backbone: expected one str or a non-empty list of distinct ones"),
    ({"alpha": 2.0}, "alpha: must be 0 (the backbone's own) or in (0, 1.4], got 2.0"),
])
def test_bad_values_name_their_key(overrides, message):
    with pytest.raises(HarnessError) as caught:
        load(None, "fine-tune", overrides)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_the_settings_name_every_registered_backbone():
    from harness.backbones import REGISTRY

    assert tuple(REGISTRY) == BACKBONES


def test_a_trial_declares_only_the_axes_with_several_values_and_finds_its_variant_back():
    keys = [Variant("vgg16", 32, 1), Variant("vgg16", 32, 2), Variant("resnet50", 32, 1), Variant("resnet50", 32, 2)]
    hp = kt.HyperParameters()
    assert declare(hp, keys) == Variant("vgg16", 32, 1)  # the first value of each axis is its default
    assert set(hp.values) == {"backbone", "unfreeze"}
    hp.values.update(backbone="resnet50", unfreeze=2)
    assert declare(hp, keys) == of_trial(hp, keys) == of_trial({"backbone": "resnet50", "unfreeze": 2}, keys) \
        == Variant("resnet50", 32, 2)
    one = kt.HyperParameters()
    assert declare(one, [Variant("vgg16", 32, 1)]) == Variant("vgg16", 32, 1) and not one.values
