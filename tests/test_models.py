import pytest
import torch

from distill_core.common.seeding import seeded
from distill_core.models import MODEL_NAMES, ConvNet, build_model, has_batchnorm, list_models, model_options

SHAPES = {
    "mlp_bn": [(1, 8, 8), (1, 40), (1, 28, 28)],
    "mlp_bn_half": [(1, 8, 8), (1, 40)],
    "mlp_bn_deep": [(1, 40), (1, 8, 8)],
    "convnet_bn": [(1, 28, 28), (3, 32, 32), (1, 8, 8)],
    "convnet_bn_half": [(1, 28, 28), (3, 32, 32), (1, 8, 8)],
    "convnet_bn_quarter": [(1, 28, 28), (1, 8, 8)],
    "lenet5_bn": [(1, 28, 28), (3, 32, 32)],
    "lenet5_half": [(1, 28, 28), (3, 32, 32)],
    "resnet_small": [(3, 32, 32), (1, 28, 28)],
    "convnet3_in": [(1, 28, 28), (3, 32, 32), (1, 8, 8)],
}
TEACHERS = ["mlp_bn", "mlp_bn_deep", "convnet_bn", "convnet_bn_half", "lenet5_bn", "resnet_small"]
PAIRS = [("mlp_bn", "mlp_bn_half", (1, 8, 8)), ("mlp_bn_deep", "mlp_bn_half", (1, 40)), ("convnet_bn", "convnet_bn_half", (1, 28, 28)),
         ("convnet_bn_half", "convnet_bn_quarter", (1, 28, 28)), ("lenet5_bn", "lenet5_half", (1, 28, 28))]


def test_every_zoo_model_is_covered():
    assert sorted(SHAPES) == list_models() == list(MODEL_NAMES)


@pytest.mark.parametrize("name,shape", [(n, s) for n, shapes in SHAPES.items() for s in shapes])
def test_forward_and_embed_shapes(name, shape):
    model = build_model(name, input_shape=shape, num_classes=7).eval()
    x = torch.randn(5, *shape)
    logits = model(x)
    assert logits.shape == (5, 7)
    emb = model.embed(x)
    assert emb.shape == (5, model.classifier.in_features)
    assert torch.allclose(model.classifier(emb), logits)


@pytest.mark.parametrize("name", TEACHERS)
def test_teachers_have_batchnorm(name):
    assert has_batchnorm(build_model(name, input_shape=SHAPES[name][0], num_classes=10))


def test_convnet3_first_padding_reproduces_the_published_28x28_network():
    # DC/DSA/DM pad the first convolution of 28×28 images by 3: 32 → 16 → 8 → 4, so 128 × 4 × 4 features
    assert build_model("convnet3_in", input_shape=(1, 28, 28), num_classes=10, first_padding=3).feature_dim == 2048
    assert build_model("convnet3_in", input_shape=(1, 28, 28), num_classes=10).feature_dim == 128 * 3 * 3
    assert build_model("convnet3_in", input_shape=(3, 32, 32), num_classes=10).feature_dim == 2048
    assert build_model("convnet3_in", input_shape=(1, 4, 4), num_classes=10, first_padding=3).feature_dim == 128  # 8 → 1
    with pytest.raises(ValueError, match="with first_padding 0 it needs images of at least 10×10"):
        build_model("convnet3_in", input_shape=(1, 8, 8), num_classes=10, first_padding=0)
    with pytest.raises(ValueError, match="first_padding must be >= 0"):
        ConvNet((1, 28, 28), 10, first_padding=-1)


def test_condensation_evaluator_has_no_batchnorm():
    assert not has_batchnorm(build_model("convnet3_in", input_shape=(1, 28, 28), num_classes=10))


@pytest.mark.parametrize("teacher,student,shape", PAIRS)
def test_students_are_smaller(teacher, student, shape):
    def count(name):
        return sum(p.numel() for p in build_model(name, input_shape=shape, num_classes=10).parameters())

    assert count(student) < count(teacher) / 2


def test_same_seed_same_weights():
    def weights(seed):
        with seeded(seed):
            return torch.cat([p.flatten() for p in build_model("convnet_bn", input_shape=(1, 28, 28), num_classes=10).parameters()])

    assert torch.equal(weights(0), weights(0)) and not torch.equal(weights(0), weights(1))


def test_bad_names_and_shapes():
    with pytest.raises(ValueError, match="unknown model 'vgg'.*convnet_bn"):
        build_model("vgg", input_shape=(1, 28, 28), num_classes=10)
    with pytest.raises(ValueError, match="at least 28×28"):
        build_model("lenet5_bn", input_shape=(1, 8, 8), num_classes=10)
    with pytest.raises(ValueError, match="needs image inputs"):
        build_model("convnet_bn", input_shape=(1, 40), num_classes=10)
    with pytest.raises(ValueError, match="at least 8×8"):
        build_model("convnet_bn", input_shape=(1, 7, 7), num_classes=10)
    with pytest.raises(ValueError, match="at least 16×16"):
        build_model("convnet3_in", input_shape=(1, 8, 8), num_classes=10, depth=4)
    with pytest.raises(ValueError, match="takes no option.*width.*accepts: widths="):
        build_model("lenet5_bn", input_shape=(1, 28, 28), num_classes=10, width=2)
    with pytest.raises(ValueError, match="unknown norm"):
        build_model("convnet3_in", input_shape=(1, 28, 28), num_classes=10, norm="layernorm")
    with pytest.raises(ValueError, match="num_classes"):
        build_model("mlp_bn", input_shape=(1, 8, 8), num_classes=0)


def test_options_change_the_architecture():
    def count(name, **kw):
        return sum(p.numel() for p in build_model(name, input_shape=(1, 8, 8), num_classes=10, **kw).parameters())

    assert model_options("mlp_bn") == {"width": 256, "depth": 2} and model_options("mlp_bn_half")["width"] == 128
    assert count("mlp_bn", width=128) == count("mlp_bn_half") and count("mlp_bn", depth=3) > count("mlp_bn")
    assert count("convnet_bn", width=0.5) == count("convnet_bn_half") and count("convnet_bn_half", width=1.0) == count("convnet_bn")
    assert count("resnet_small", blocks_per_stage=2) > count("resnet_small")
    assert count("convnet3_in", width=32, depth=2) < count("convnet3_in")
    assert has_batchnorm(build_model("convnet3_in", input_shape=(1, 8, 8), num_classes=10, norm="batchnorm"))
    model = build_model("convnet_bn", input_shape=(1, 8, 8), num_classes=10, dropout=0.5)
    assert model.training and any(isinstance(m, torch.nn.Dropout) for m in model.features.modules())
    lenet = build_model("lenet5_bn", input_shape=(1, 28, 28), num_classes=10)
    assert isinstance(lenet.classifier, torch.nn.Linear) and lenet.classifier.in_features == 84


@pytest.mark.parametrize("name", TEACHERS)
def test_gradients_reach_the_input(name):
    model = build_model(name, input_shape=SHAPES[name][0], num_classes=10).eval()
    x = torch.randn(4, *SHAPES[name][0], requires_grad=True)
    torch.nn.functional.cross_entropy(model(x), torch.arange(4)).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
