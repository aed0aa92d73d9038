import pytest
import torch

from distill_core.augment import augment_batch, random_hflip, random_shift
from distill_core.common.seeding import torch_generator


def test_shift_moves_content_and_keeps_shape():
    x = torch.zeros(64, 1, 8, 8)
    x[:, :, 3:5, 3:5] = 1.0
    out = random_shift(x, 2, torch_generator(0))
    assert out.shape == x.shape
    assert torch.allclose(out.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)))  # a 2-pixel shift keeps the blob inside
    centres = (out[:, 0].nonzero()[:, 1:].float()).mean(0)
    assert not torch.equal(out, x) and centres.shape == (2,)
    assert len({tuple(o.nonzero()[0].tolist()) for o in out}) > 5  # per-sample offsets, not one for the batch


def test_same_generator_seed_same_augmentation():
    x = torch.randn(16, 3, 8, 8)
    a = augment_batch(x, torch_generator(5), max_shift=2, hflip=True)
    b = augment_batch(x, torch_generator(5), max_shift=2, hflip=True)
    assert torch.equal(a, b)


def test_hflip_flips_about_half_and_leaves_vectors_alone():
    x = torch.arange(8.0).repeat(1000, 1, 1, 1)
    flipped = (random_hflip(x, torch_generator(0))[:, 0, 0, 0] == 7).float().mean()
    assert 0.4 < flipped < 0.6
    signal = torch.randn(4, 1, 40)
    assert augment_batch(signal, torch_generator(0), max_shift=2, hflip=True) is signal


def test_mixup_blends_chosen_images_only():
    from distill_core.augment import mix_batch

    x = torch.arange(32.0).view(32, 1, 1, 1).expand(32, 1, 4, 4).contiguous()
    assert mix_batch(x, torch_generator(0), mode="mixup", prob=0.0) is x
    out = mix_batch(x, torch_generator(0), mode="mixup", prob=0.5)
    changed = (out != x).flatten(1).any(1)
    assert 0.25 < changed.float().mean() < 0.75  # about half mixed (a partner can be the image itself)
    assert torch.all((out >= 0) & (out <= 31))  # convex combinations of batch members
    assert torch.equal(out, mix_batch(x, torch_generator(0), mode="mixup", prob=0.5))  # seeded


def test_cutmix_pastes_a_box_from_a_partner():
    from distill_core.augment import mix_batch

    x = torch.cat([torch.zeros(8, 1, 8, 8), torch.ones(8, 1, 8, 8)])
    out = mix_batch(x, torch_generator(1), mode="cutmix", prob=1.0)
    assert set(out.unique().tolist()) <= {0.0, 1.0}  # every pixel comes whole from one image or its partner
    pasted = (out != x).flatten(1).float().mean(1)
    assert pasted.max() > 0 and pasted.max() < 1
    with pytest.raises(ValueError, match="unknown mix mode 'blend'"):
        mix_batch(x, torch_generator(1), mode="blend")
