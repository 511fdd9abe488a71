"""losses.py: the paper's Laplacian-pyramid weighting, plain L1 and the per-sample log-MSE."""

import math

import pytest
import torch

from softmax_splatting.losses import l1_loss, laplacian_loss, laplacian_terms, log_mse_loss, relative_mse_loss


def checkerboard(h, w, amplitude):
    """A pattern at the Nyquist frequency: the 5-tap binomial blur removes it entirely, so it lives in the finest
    band-pass level only."""
    y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
    return (((x + y) % 2) * 2 - 1).float().mul(amplitude).expand(1, 3, h, w)


def test_each_level_counts_by_its_pixels_times_two_to_the_level():
    """A constant offset lives in the coarsest level only (5 levels: 1/16 of the size, weight 2^4); a checkerboard
    in the finest only (weight 1). The paper's sum over each level's pixels, divided by the finest level's count,
    makes their terms c and 2^4 * c / 16^2 = c / 16 (a per-level mean would make the second 16 c)."""
    truth = torch.rand(1, 3, 64, 64)
    c = 0.05
    for difference, level, expected in ((checkerboard(64, 64, c), 0, c), (torch.full((1, 3, 64, 64), c), 4, c / 16)):
        terms = laplacian_terms(truth + difference, truth)
        assert len(terms) == 5
        for i, term in enumerate(terms):
            if i == level:
                assert term.item() == pytest.approx(expected, rel=1e-4)
            else:
                assert term.item() == pytest.approx(0.0, abs=1e-5 * expected)
    both = laplacian_terms(truth + checkerboard(64, 64, c) + c, truth)
    shares = torch.stack(both) / torch.stack(both).sum()
    assert shares[0].item() == pytest.approx(16 / 17, rel=1e-3)
    assert shares[4].item() == pytest.approx(1 / 17, rel=1e-3)
    assert laplacian_loss(truth + checkerboard(64, 64, c) + c, truth).item() == pytest.approx(c + c / 16, rel=1e-3)


def test_laplacian_loss_does_not_depend_on_the_crop_size():
    for size in (32, 128):
        truth = torch.rand(2, 3, size, size)
        assert laplacian_loss(truth + checkerboard(size, size, 0.1), truth).item() == pytest.approx(0.1, rel=1e-4)


def test_log_mse_is_the_batch_mean_of_per_sample_log_mse():
    truth = torch.zeros(2, 3, 8, 8)
    prediction = truth.clone()
    prediction[0] += 0.1
    prediction[1] += 0.01
    expected = (math.log(0.01 + 1e-8) + math.log(1e-4 + 1e-8)) / 2
    assert log_mse_loss(prediction, truth).item() == pytest.approx(expected, rel=1e-5)
    assert math.isfinite(log_mse_loss(truth, truth).item())
    # the gradient of a nearly right sample is as large as that of a bad one, relative to its error
    prediction.requires_grad_()
    log_mse_loss(prediction, truth).backward()
    ratio = prediction.grad[1].abs().mean() / prediction.grad[0].abs().mean()
    assert ratio.item() == pytest.approx(10.0, rel=1e-3)


@pytest.mark.parametrize('loss', [laplacian_loss, l1_loss, log_mse_loss])
def test_losses_refuse_mismatched_shapes(loss):
    a = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match='same shape'):
        loss(a, a[:, :, :8])


def test_relative_mse_divides_each_sample_by_its_reference():
    truth = torch.zeros(2, 3, 8, 8)
    prediction = truth.clone()
    prediction[0] += 0.1   # MSE 1e-2
    prediction[1] += 0.01  # MSE 1e-4
    reference = torch.tensor([1e-2, 1e-3])
    assert relative_mse_loss(prediction, truth, reference).item() == pytest.approx((1.0 + 0.1) / 2, rel=1e-5)
    prediction.requires_grad_()
    relative_mse_loss(prediction, truth, reference).backward()
    # the gradient weighs each sample's error by 1 / reference: here 1/1e-2 vs 1/1e-3 on errors 0.1 and 0.01
    assert prediction.grad[0].abs().mean().item() == pytest.approx(prediction.grad[1].abs().mean().item(), rel=1e-4)
