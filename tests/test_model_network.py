"""The pure network: Keras ConvLSTM2D semantics, state passing, receptive field."""

from __future__ import annotations

import pytest
import torch

from model.network import (
    ConvLSTM2D,
    ConvLSTMNet,
    NaiveConvLSTM2D,
    to_channels_last_5d,
)

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device"))]


def _x(b=2, t=5, c=3, h=8, w=9, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, t, c, h, w, generator=g).to(device)


def test_shapes_like_keras():
    torch.manual_seed(0)
    layer = ConvLSTM2D(3, 4, 3, return_sequences=True)
    out, (h, c) = layer(_x())
    assert out.shape == (2, 5, 4, 8, 9)  # Keras: (batch, time, rows, cols, filters) -> NCHW
    assert h.shape == c.shape == (2, 4, 8, 9)
    torch.testing.assert_close(out[:, -1], h)
    last = ConvLSTM2D(3, 4, 3, return_sequences=False)
    y, _ = last(_x())
    assert y.shape == (2, 4, 8, 9)


def test_unit_forget_bias_and_gate_order():
    layer = ConvLSTM2D(3, 4, 3)
    b = layer.input_conv.bias.detach()
    assert torch.equal(b[4:8], torch.ones(4))  # gate order i, f, c, o: f is the 2nd block
    assert torch.equal(b[:4], torch.zeros(4)) and torch.equal(b[8:], torch.zeros(8))
    assert layer.recurrent_conv.bias is None  # Keras: bias on the input kernel only
    no = ConvLSTM2D(3, 4, 3, unit_forget_bias=False)
    assert torch.equal(no.input_conv.bias.detach(), torch.zeros(16))
    w = layer.recurrent_conv.weight.detach().reshape(16, -1)
    torch.testing.assert_close(w @ w.T, torch.eye(16), atol=1e-5, rtol=0)  # orthogonal


def _step_and_by_hand(layer, gate, scale=1.0):
    """One step of ``layer`` (2 -> 3 channels, 3 x 3 kernel) from a random state, with
    autograd and without (the inference path), and the same step by hand: the Keras
    equations with the layer's own weights and ``gate`` as recurrent activation.
    Returns ``[(h, c) with grad, (h, c) without]``, ``(h, c)`` by hand and the gates'
    inputs (i, f, o)."""
    x = scale * _x(b=1, t=1, c=2, h=5, w=5)
    h0 = torch.randn(1, 3, 5, 5)
    c0 = torch.randn(1, 3, 5, 5)
    _, with_grad = layer(x, (h0, c0))
    with torch.no_grad():
        _, no_grad = layer(x, (h0, c0))
    z = torch.nn.functional.conv2d(x[:, 0], layer.input_conv.weight, layer.input_conv.bias,
                                   padding=1)
    z = z + torch.nn.functional.conv2d(h0, layer.recurrent_conv.weight, padding=1)
    i, f, g, o = z.chunk(4, dim=1)
    c_ref = gate(f) * c0 + gate(i) * torch.tanh(g)
    h_ref = gate(o) * torch.tanh(c_ref)
    return [with_grad, no_grad], (h_ref, c_ref), torch.cat([i, f, o]).detach()


def test_gate_equations_by_hand():
    """One step against the Keras equations written out with the layer's own weights."""
    torch.manual_seed(1)
    outs, (h_ref, c_ref), _ = _step_and_by_hand(ConvLSTM2D(2, 3, 3), torch.sigmoid)
    for h, c in outs:
        torch.testing.assert_close(c, c_ref)
        torch.testing.assert_close(h, h_ref)


def test_hard_sigmoid_option():
    """Keras 2's hard sigmoid, clip(0.2 x + 0.5, 0, 1), on the gates; tanh elsewhere."""
    torch.manual_seed(1)

    def hard_sigmoid(v):
        return torch.clamp(0.2 * v + 0.5, 0.0, 1.0)

    layer = ConvLSTM2D(2, 3, 3, recurrent_activation="hard_sigmoid")
    # x 4: gate inputs on both clipped ends (|z| > 2.5) and between
    outs, (h_ref, c_ref), gates = _step_and_by_hand(layer, hard_sigmoid, scale=4.0)
    assert (gates < -2.5).any() and (gates > 2.5).any() and (gates.abs() < 2.5).any()
    for h, c in outs:
        torch.testing.assert_close(c, c_ref)
        torch.testing.assert_close(h, h_ref)
    with pytest.raises(ValueError, match="recurrent_activation"):
        ConvLSTM2D(2, 3, 3, recurrent_activation="relu")
    with pytest.raises(ValueError, match="odd"):
        ConvLSTM2D(2, 3, 4)


@pytest.mark.parametrize("device", DEVICES)
def test_streaming_two_halves_equals_one_pass(device):
    torch.manual_seed(2)
    net = ConvLSTMNet(3, [4, 5], 3, head_filters=6).to(device)
    x = _x(t=8, device=device)
    full, sf = net(x)
    a, s = net(x[:, :3])
    b, s2 = net(x[:, 3:], s)
    torch.testing.assert_close(torch.cat([a, b], 1), full, atol=1e-5, rtol=1e-5)
    for (h1, c1), (h2, c2) in zip(sf, s2, strict=True):
        torch.testing.assert_close(h1, h2, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(c1, c2, atol=1e-5, rtol=1e-5)


def test_naive_reference_is_the_same_layer():
    torch.manual_seed(3)
    layer = ConvLSTM2D(3, 4, 3)
    naive = NaiveConvLSTM2D.from_layer(layer)
    x = _x()
    a, (ha, ca) = layer(x)
    b, (hb, cb) = naive(x)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ca, cb, atol=1e-5, rtol=1e-5)


def test_channels_last_gives_the_same_result():
    torch.manual_seed(4)
    net = ConvLSTMNet(3, [4, 4], 3)
    x = _x()
    ref, _ = net(x)
    net.set_channels_last(True)
    y, states = net(to_channels_last_5d(x))
    torch.testing.assert_close(y, ref, atol=1e-5, rtol=1e-5)
    assert states[0][0].is_contiguous(memory_format=torch.channels_last)
    y2, s2 = net(x[:, :2])  # plain input and a carried state work too
    y3, _ = net(x[:, 2:], s2)
    torch.testing.assert_close(torch.cat([y2, y3], 1), ref, atol=1e-5, rtol=1e-5)


def test_receptive_field_is_local():
    """An input change at day 0 moves the output only within steps x radius pixels."""
    torch.manual_seed(5)
    net = ConvLSTMNet(3, [4, 4], 3, head_filters=4, head_kernel=3)
    x = _x(b=1, t=3, h=24, w=24)
    y0, _ = net(x)
    x2 = x.clone()
    x2[0, 0, :, 12, 12] += 5.0
    y1, _ = net(x2)
    diff = (y1 - y0).abs()[0]
    for t in range(3):
        r = net.receptive_radius(t + 1)
        assert r == (t + 1) * 2 + 1
        changed = torch.nonzero(diff[t] > 0)
        assert len(changed) > 0
        assert (changed - 12).abs().max() <= r
        assert diff[t, 12, 12] > 0


def test_inference_path_equals_training_path_and_follows_weight_changes():
    """Without autograd the c-gate factor is folded into cached kernels: same numbers,
    and an in-place weight update (an optimiser step) invalidates the cache."""
    torch.manual_seed(6)
    net = ConvLSTMNet(3, [4, 5], 3)
    x = _x(t=4)
    train_y, _ = net(x)
    with torch.no_grad():
        inf_y, _ = net(x)
    torch.testing.assert_close(inf_y, train_y.detach(), atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        net.convlstm[0].recurrent_conv.weight.mul_(0.5)
        net.convlstm[1].input_conv.bias.add_(0.3)
        inf2, _ = net(x)
    train2, _ = net(x)
    torch.testing.assert_close(inf2, train2.detach(), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(inf2, inf_y)
