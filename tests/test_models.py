import pytest
import torch
from torch import nn

from dmlnotes.models import BackboneEmbedding, ConvEmbedding, MLPEmbedding, resnet50_embedding


@pytest.mark.parametrize("dim", [2, 64])
def test_mlp_and_cnn_give_embeddings_of_any_size(dim):
    assert MLPEmbedding(64, dim)(torch.randn(5, 64)).shape == (5, dim)
    assert ConvEmbedding(dim)(torch.randn(5, 1, 28, 28)).shape == (5, dim)
    assert ConvEmbedding(dim, in_channels=3)(torch.randn(2, 3, 40, 40)).shape == (2, dim)


def test_normalized_models_output_unit_vectors():
    out = MLPEmbedding(64, 2, normalize=True)(torch.randn(7, 64))
    assert torch.allclose(out.norm(dim=1), torch.ones(7), atol=1e-6)
    out = ConvEmbedding(8, normalize=True).eval()(torch.randn(3, 1, 28, 28))
    assert torch.allclose(out.norm(dim=1), torch.ones(3), atol=1e-6)


def test_cnn_rejects_flat_input_and_bad_dimension():
    with pytest.raises(ValueError, match="batch, channels, height, width"):
        ConvEmbedding(4)(torch.randn(3, 784))
    with pytest.raises(ValueError, match="embedding_dim"):
        MLPEmbedding(64, 0)


def test_backbone_head_is_layer_norm_then_bias_free_projection():
    backbone = nn.Sequential(nn.Flatten(), nn.Linear(12, 6))
    model = BackboneEmbedding(backbone, feature_dim=6, embedding_dim=3)
    assert model.projection.bias is None and model.embedding_dim == 3
    assert model.new_parameters() == [model.projection.weight]
    features = model.layer_norm(backbone(torch.randn(4, 12)))
    assert torch.allclose(features.mean(dim=1), torch.zeros(4), atol=1e-5)
    assert model(torch.randn(4, 12)).shape == (4, 3)
    assert BackboneEmbedding(backbone, 6).embedding_dim == 6


def test_resnet50_needs_torchvision_or_says_so():
    try:
        import torchvision  # noqa: F401
    except Exception:
        with pytest.raises(ImportError, match="torchvision"):
            resnet50_embedding()
    else:
        model = resnet50_embedding(embedding_dim=16, pretrained=False)
        assert model.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 16)
