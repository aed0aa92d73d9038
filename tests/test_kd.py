import pytest
import numpy as np
import torch

from distill_core.common.seeding import seeded
from distill_core.kd import evaluate, kd_loss, predict_logits


def test_kd_loss_zero_for_equal_logits_and_positive_otherwise():
    logits = torch.randn(8, 10)
    assert kd_loss(logits, logits, temperature=4.0).item() == pytest.approx(0.0, abs=1e-6)
    assert kd_loss(torch.randn(8, 10), logits, temperature=4.0).item() > 0


def test_kd_loss_weights_and_reductions():
    s, t = torch.randn(4, 5), torch.randn(4, 5)
    per = kd_loss(s, t, 2.0, reduction="none")
    assert per.shape == (4,) and (per >= 0).all()
    w = torch.tensor([1.0, 0.0, 0.5, 2.0])
    assert kd_loss(s, t, 2.0, weights=w).item() == pytest.approx((per * w).mean().item(), rel=1e-6)
    assert kd_loss(s, t, 2.0, reduction="sum").item() == pytest.approx(per.sum().item(), rel=1e-6)
    # τ² scaling: at equal softened distributions the gradient scale is comparable across τ
    assert kd_loss(s, t, 1.0).item() == pytest.approx(torch.nn.functional.kl_div(
        torch.log_softmax(s, 1), torch.log_softmax(t, 1), log_target=True, reduction="batchmean").item(), rel=1e-5)


def test_kd_loss_bad_input():
    with pytest.raises(ValueError, match="differ in shape"):
        kd_loss(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        kd_loss(torch.zeros(2, 3), torch.zeros(2, 3), temperature=0)
    with pytest.raises(ValueError, match="weights must have shape"):
        kd_loss(torch.zeros(2, 3), torch.zeros(2, 3), weights=torch.ones(3))


def test_evaluate_reports_accuracy_agreement_and_kl():
    with seeded(0):
        teacher, student = torch.nn.Linear(6, 4), torch.nn.Linear(6, 4)
        x = torch.randn(50, 6)
    with torch.no_grad():
        y = teacher(x).argmax(1)  # the teacher's labels: its accuracy is 1 and a student's equals its agreement
    own = evaluate(teacher, x, y, teacher)
    assert own["accuracy"] == own["agreement"] == 1.0 and own["kl"] == pytest.approx(0.0, abs=1e-6)
    other = evaluate(student, x, y, teacher)
    assert other["accuracy"] == other["agreement"] < 1.0 and other["kl"] > 0
    assert evaluate(student, x, y, teacher_logits=predict_logits(teacher, x)) == other
    assert set(evaluate(student, x, y)) == {"accuracy"}
    assert set(evaluate(student, x, teacher=teacher)) == {"agreement", "kl"}


def test_predict_logits_batches_in_eval_mode_and_restores_the_mode():
    with seeded(0):
        model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 3))
        x = torch.randn(10, 6)
    model.train()
    # batches of 3 leave one of 1, which BatchNorm refuses in training mode: only eval mode gets through
    out = predict_logits(model, x, batch_size=3)
    assert model.training
    model.eval()
    with torch.no_grad():
        assert torch.allclose(out, model(x), atol=1e-6)
    assert len(predict_logits(model, x[:0])) == 0


def test_class_means_average_per_class_and_fill_empty_classes():
    from distill_core.kd import class_means

    values = torch.tensor([1.0, 0.0, 3.0, 5.0])
    classes = torch.tensor([0, 0, 2, 2])
    np.testing.assert_allclose(class_means(values, classes, 4, empty=-1.0), [0.5, -1.0, 4.0, -1.0])
