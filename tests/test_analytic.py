"""Unit tests of the hand-derived backpropagation (helpers.analytic, notebook 01)."""

import numpy as np
import pytest

from helpers import analytic as A

SAMPLES = [(A.REPORT_X, A.REPORT_Y), (A.REPORT_X, A.REPORT_Y)]


@pytest.fixture
def small_params():
    """Parameters where no unit saturates and the ReLU output is active."""
    params = A.random_params(seed=0, scale=0.1)
    cache = A.forward(params, A.REPORT_X)
    assert cache["A4"][0, 0] > 0
    for name, factor in A.local_derivatives(cache).items():
        if name != "u(A4)":
            assert factor.min() > 0.1, name
    return params


def test_gradient_keys_and_shapes():
    grads = A.gradients(A.REPORT_PARAMS, A.REPORT_X, A.REPORT_Y)
    assert list(grads) == list(A.KEYS)
    for key, value in grads.items():
        assert value.shape == A.SHAPES[key] == A.REPORT_PARAMS[key].shape
        assert value.dtype == np.float64


def test_report_param_shapes():
    assert {k: v.shape for k, v in A.REPORT_PARAMS.items()} == A.SHAPES


def test_forward_shapes():
    cache = A.forward(A.REPORT_PARAMS, A.REPORT_X)
    expected = {"A1": (2, 1), "Z": (2, 1), "A2": (3, 1), "K": (3, 1), "A3": (2, 1)}
    expected |= {"P": (2, 1), "A4": (1, 1), "yhat": (1, 1)}
    assert {k: v.shape for k, v in cache.items()} == expected


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradients_match_finite_differences(seed):
    params = A.random_params(seed=seed, scale=0.5)
    x = np.array([[0.5], [-1.0], [2.0]])
    analytic = A.gradients(params, x, 1.5)
    numeric = A.finite_difference_gradients(params, x, 1.5, eps=1e-5)
    for key in A.KEYS:
        assert np.abs(analytic[key]).max() > 1e-3, key  # a real check, not 0 == 0
        np.testing.assert_allclose(analytic[key], numeric[key], rtol=1e-6, atol=1e-9, err_msg=key)


def test_gradients_match_finite_differences_report_input(small_params):
    analytic = A.gradients(small_params, A.REPORT_X, A.REPORT_Y)
    numeric = A.finite_difference_gradients(small_params, A.REPORT_X, A.REPORT_Y)
    for key in A.KEYS:
        np.testing.assert_allclose(analytic[key], numeric[key], rtol=1e-5, atol=1e-9, err_msg=key)


def test_two_updates_reproduce_report():
    history, losses = A.train(A.REPORT_PARAMS, SAMPLES, A.REPORT_LR)
    assert len(history) == len(losses) == 2
    final = history[-1]
    np.testing.assert_allclose(final["W4"], [[2.22815, 2.42815]], atol=1e-5)
    np.testing.assert_allclose(final["B4"], [[2.32815]], atol=1e-5)
    for key in ("W1", "B1", "W2", "B2", "W3", "B3"):
        np.testing.assert_array_equal(final[key], A.REPORT_PARAMS[key], err_msg=key)
    # the loss of sample 2 before its update is the report's "0.05"
    assert losses[1] == pytest.approx(0.0483605, abs=1e-6)
    assert losses[0] == pytest.approx(0.5 * (0.78 - 7) ** 2)


def test_train_does_not_modify_input():
    before = {k: v.copy() for k, v in A.REPORT_PARAMS.items()}
    A.train(A.REPORT_PARAMS, SAMPLES, A.REPORT_LR)
    for key in A.KEYS:
        np.testing.assert_array_equal(A.REPORT_PARAMS[key], before[key])


def test_relu_derivative_at_zero_is_one():
    assert A.relu_derivative(np.array([[0.0]]))[0, 0] == 1.0
    assert A.relu_derivative(np.array([[-1e-12]]))[0, 0] == 0.0
    # make A4 exactly 0: zero output weights and bias; the output gradient still flows
    params = {**A.random_params(seed=0), "W4": np.zeros((1, 2)), "B4": np.zeros((1, 1))}
    assert A.forward(params, A.REPORT_X)["A4"][0, 0] == 0.0
    grads = A.gradients(params, A.REPORT_X, 7.0)
    assert grads["B4"][0, 0] == pytest.approx(-7.0)


def test_missing_key_is_a_clear_error():
    params = {k: v for k, v in A.REPORT_PARAMS.items() if k != "B3"}
    with pytest.raises(ValueError, match=r"B3.*\(2, 1\)"):
        A.gradients(params, A.REPORT_X, A.REPORT_Y)


def test_wrong_shape_is_a_clear_error():
    params = {**A.REPORT_PARAMS, "W2": np.zeros((2, 3))}
    with pytest.raises(ValueError, match=r"W2.*\(2, 3\).*expected shape \(3, 2\)"):
        A.gradients(params, A.REPORT_X, A.REPORT_Y)


def test_flat_bias_is_rejected():
    params = {**A.REPORT_PARAMS, "B1": np.array([0.71, 0.72])}
    with pytest.raises(ValueError, match=r"B1.*expected shape \(2, 1\)"):
        A.gradients(params, A.REPORT_X, A.REPORT_Y)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match=r"x must hold 3 inputs"):
        A.gradients(A.REPORT_PARAMS, np.ones((4, 1)), A.REPORT_Y)


def test_report_params_saturate_layers_1_to_3():
    grads = A.gradients(A.REPORT_PARAMS, A.REPORT_X, A.REPORT_Y)
    norms = A.layer_gradient_norms(grads)
    assert norms[1] == norms[2] == norms[3] == 0.0
    assert norms[4] > 1.0


def test_autodiff_matches_hand_gradients(small_params):
    pytest.importorskip("keras")
    analytic = A.gradients(small_params, A.REPORT_X, A.REPORT_Y)
    auto = A.autodiff_gradients(small_params, A.REPORT_X, A.REPORT_Y)
    for key in A.KEYS:
        np.testing.assert_allclose(analytic[key], auto[key], rtol=1e-10, atol=1e-14, err_msg=key)
