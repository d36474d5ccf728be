"""sklearn-style metrics against counts worked out by hand."""

import numpy as np
import pytest

from shenjing import metrics

Y_TRUE = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
Y_PRED = np.array([0, 1, 0, 1, 2, 2, 2, 0, 2])


def test_accuracy_and_confusion_matrix():
    assert metrics.accuracy_score(Y_TRUE, Y_PRED) == pytest.approx(6 / 9)
    cm = metrics.confusion_matrix(Y_TRUE, Y_PRED)
    np.testing.assert_array_equal(cm, [[2, 1, 0], [0, 1, 1], [1, 0, 3]])


def test_precision_recall_f1_per_class_and_averages():
    p, r, f, s = metrics.precision_recall_fscore_support(Y_TRUE, Y_PRED)
    np.testing.assert_allclose(p, [2 / 3, 1 / 2, 3 / 4])
    np.testing.assert_allclose(r, [2 / 3, 1 / 2, 3 / 4])
    np.testing.assert_allclose(f, [2 / 3, 1 / 2, 3 / 4])
    np.testing.assert_array_equal(s, [3, 2, 4])
    assert metrics.f1_score(Y_TRUE, Y_PRED, average="macro") == pytest.approx(
        (2 / 3 + 1 / 2 + 3 / 4) / 3)
    assert metrics.recall_score(Y_TRUE, Y_PRED, average="weighted") == pytest.approx(6 / 9)


def test_binary_average_uses_positive_class():
    t, p = np.array([1, 1, 0, 0]), np.array([1, 0, 0, 1])
    assert metrics.precision_score(t, p) == pytest.approx(0.5)
    assert metrics.recall_score(t, p) == pytest.approx(0.5)


def test_classification_report_lists_every_class_and_accuracy():
    text = metrics.classification_report(Y_TRUE, Y_PRED, target_names=["a", "b", "c"])
    lines = [ln.split() for ln in text.strip().splitlines() if ln.strip()]
    rows = {ln[0]: ln[1:] for ln in lines[1:4]}
    assert rows["c"] == ["0.75", "0.75", "0.75", "4"]
    assert any(ln[0] == "accuracy" and ln[1] == "0.67" for ln in lines)


def test_mismatched_lengths_name_both():
    with pytest.raises(ValueError, match="3 labels but y_pred has 2"):
        metrics.accuracy_score([0, 1, 1], [0, 1])
