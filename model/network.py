"""The pure network: a Keras-style ConvLSTM2D layer, a stack of them and a Conv2D head.

Nothing here knows about xarray, units or normalisation (that is :mod:`model.wrapper`).

Semantics follow ``keras.layers.ConvLSTM2D`` (Shi et al. 2015 without peepholes):

.. math::

    i_t = \\sigma(W_{xi} * x_t + W_{hi} * h_{t-1} + b_i) \\\\
    f_t = \\sigma(W_{xf} * x_t + W_{hf} * h_{t-1} + b_f) \\\\
    g_t = \\tanh(W_{xc} * x_t + W_{hc} * h_{t-1} + b_c) \\\\
    o_t = \\sigma(W_{xo} * x_t + W_{ho} * h_{t-1} + b_o) \\\\
    c_t = f_t c_{t-1} + i_t g_t, \\quad h_t = o_t \\tanh(c_t)

with the gate order ``i, f, c, o`` in the stacked kernels, ``padding='same'``, a bias on
the input kernel only, the forget-gate bias initialised to one (``unit_forget_bias``),
Glorot-uniform input kernels and orthogonal recurrent kernels.

Speed: the input-to-gate convolution has no recurrence, so it is computed for all time
steps in one batched convolution *outside* the time loop; only the (smaller)
hidden-to-gate convolution runs per step.  Tensors may be ``channels_last``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

State = tuple[torch.Tensor, torch.Tensor]
"""``(h, c)`` of one layer, each ``(B, filters, H, W)``."""


def _hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    # Keras 2 definition: clip(0.2 x + 0.5, 0, 1)
    return torch.clamp(0.2 * x + 0.5, 0.0, 1.0)


def _tanh(x: torch.Tensor) -> torch.Tensor:
    # tanh(x) = 2 sigmoid(2x) - 1: the same function (absolute error ~1e-7), and on CPU
    # several times faster than torch.tanh
    return 2.0 * torch.sigmoid(2.0 * x) - 1.0


_ACTIVATIONS = {"sigmoid": torch.sigmoid, "hard_sigmoid": _hard_sigmoid, "tanh": torch.tanh}


class ConvLSTM2D(nn.Module):
    """One ConvLSTM2D layer with Keras semantics.

    Parameters
    ----------
    in_channels : int
        Channels of the input frames.
    filters : int
        Hidden channels (Keras ``filters``).
    kernel_size : int
        Odd square kernel size of both the input and the recurrent convolution.
    return_sequences : bool
        Return the hidden state of every step ``(B, T, F, H, W)`` (True) or only of the last
        step ``(B, F, H, W)``.
    unit_forget_bias : bool
        Initialise the forget-gate bias to one.
    recurrent_activation : str
        ``"sigmoid"`` (Keras 3 default) or ``"hard_sigmoid"`` (Keras 2 default).
    """

    def __init__(self, in_channels: int, filters: int, kernel_size: int = 3, *,
                 return_sequences: bool = True, unit_forget_bias: bool = True,
                 recurrent_activation: str = "sigmoid"):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd for padding='same', got {kernel_size}")
        if recurrent_activation not in _ACTIVATIONS:
            raise ValueError(f"recurrent_activation {recurrent_activation!r}, expected one of "
                             f"{sorted(_ACTIVATIONS)}")
        self.in_channels = in_channels
        self.filters = filters
        self.kernel_size = kernel_size
        self.return_sequences = return_sequences
        self.unit_forget_bias = unit_forget_bias
        self.recurrent_activation = recurrent_activation
        pad = kernel_size // 2
        self.input_conv = nn.Conv2d(in_channels, 4 * filters, kernel_size, padding=pad, bias=True)
        self.recurrent_conv = nn.Conv2d(filters, 4 * filters, kernel_size, padding=pad,
                                        bias=False)
        self._scale_cache: torch.Tensor | None = None
        self._fold_cache: tuple | None = None
        self.channels_last = False
        """Run every convolution on NHWC tensors (oneDNN's native layout on CPU: no
        reorders per call; set through :meth:`ConvLSTMNet.set_channels_last`)."""
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Keras initialisers: glorot_uniform, orthogonal, zeros (+1 on the forget gate)."""
        nn.init.xavier_uniform_(self.input_conv.weight)
        w = self.recurrent_conv.weight  # (4F, F, k, k): orthogonal over the flattened fan-in
        with torch.no_grad():
            flat = torch.empty(w.shape[0], w[0].numel())
            nn.init.orthogonal_(flat)
            w.copy_(flat.view_as(w))
        nn.init.zeros_(self.input_conv.bias)
        if self.unit_forget_bias:
            with torch.no_grad():
                self.input_conv.bias[self.filters:2 * self.filters] = 1.0

    @property
    def radius(self) -> int:
        """Pixels one step moves information in space (per time step)."""
        return self.kernel_size // 2

    def initial_state(self, x: torch.Tensor) -> State:
        """Zero ``(h, c)`` matching a ``(B, T, C, H, W)`` input's batch, grid, dtype, device."""
        b, _, _, h, w = x.shape
        z = x.new_zeros((b, self.filters, h, w), dtype=torch.float32)
        if self.channels_last:
            z = z.contiguous(memory_format=torch.channels_last)
        return z, z.clone()

    def input_gates(self, x: torch.Tensor, folded: bool = False) -> torch.Tensor:
        """Input-to-gate convolution for all steps at once: ``(B,T,C,H,W) -> (B,T,4F,H,W)``.

        ``folded``: with the c block of the kernel doubled (see :meth:`_folded`).
        """
        b, t, c, h, w = x.shape
        frames = x.reshape(b * t, c, h, w)
        if self.channels_last:
            frames = frames.contiguous(memory_format=torch.channels_last)
        if folded:
            wi, bi, _ = self._folded()
            g = F.conv2d(frames, wi, bi, padding=self.kernel_size // 2)
        else:
            g = self.input_conv(frames)
        return g.reshape(b, t, 4 * self.filters, h, w)

    def step(self, gx: torch.Tensor, state: State, folded: bool = False) -> State:
        """One recurrence step given the precomputed input gates ``gx`` ``(B, 4F, H, W)``.

        ``folded``: ``gx`` came from :meth:`input_gates` with ``folded=True``.
        """
        h, c = state
        # under autocast the convolutions run in bf16/fp16; the gate arithmetic and the
        # cell state stay float32 so long streams do not accumulate rounding error
        if folded:
            g = (gx + F.conv2d(h, self._folded()[2], padding=self.kernel_size // 2)).float()
        else:
            g = (gx + self.recurrent_conv(h)).float()
        n = self.filters
        if self.recurrent_activation == "sigmoid":
            # one sigmoid over all four gate blocks (a dense tensor, vectorised), with
            # tanh(x) = 2 sigmoid(2x) - 1 for the c block: torch.tanh runs ~5x slower per
            # element than torch.sigmoid on CPU, and strided gate slices slower still.
            # The factor 2 is folded into the kernels at inference (no extra pass).
            s = torch.sigmoid(g if folded else g * self._gate_scale(g))
            gg = 2.0 * s[:, 2 * n:3 * n] - 1.0
            c = torch.addcmul(s[:, n:2 * n] * c, s[:, :n], gg)
            h = s[:, 3 * n:] * _tanh(c)
            return h, c
        act = _ACTIVATIONS[self.recurrent_activation]
        i, f, gg, o = torch.chunk(g, 4, dim=1)
        c = act(f) * c + act(i) * torch.tanh(gg)
        h = act(o) * torch.tanh(c)
        return h, c

    def _folded(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Input kernel, input bias and recurrent kernel with the c block doubled.

        Inference only (no autograd); cached and rebuilt whenever a parameter changes
        (its version counter), moves, or the memory format changes.
        """
        ps = (self.input_conv.weight, self.input_conv.bias, self.recurrent_conv.weight)
        key = tuple((p.data_ptr(), p._version, p.device, p.dtype) for p in ps)
        key += (self.channels_last,)
        if self._fold_cache is None or self._fold_cache[0] != key:
            n = self.filters
            out = []
            with torch.inference_mode(False), torch.no_grad():
                for p in ps:
                    q = p.detach().clone()
                    q[2 * n:3 * n] *= 2.0
                    if q.dim() == 4 and self.channels_last:
                        q = q.contiguous(memory_format=torch.channels_last)
                    out.append(q)
            self._fold_cache = (key, tuple(out))
        return self._fold_cache[1]

    def _gate_scale(self, g: torch.Tensor) -> torch.Tensor:
        """``(1, 4F, 1, 1)``: 1 on the i, f, o blocks and 2 on the c block."""
        sc = self._scale_cache
        if sc is None or sc.device != g.device or sc.dtype != g.dtype:
            n = self.filters
            sc = torch.ones(1, 4 * n, 1, 1, device=g.device, dtype=g.dtype)
            sc[:, 2 * n:3 * n] = 2.0
            self._scale_cache = sc
        return sc

    def forward(self, x: torch.Tensor, state: State | None = None
                ) -> tuple[torch.Tensor, State]:
        """Run the layer over a sequence.

        Parameters
        ----------
        x : torch.Tensor
            ``(B, T, C, H, W)``.
        state : tuple of torch.Tensor, optional
            Initial ``(h, c)``; zeros when None (Keras ``initial_state``).

        Returns
        -------
        out, state
            ``(B, T, F, H, W)`` (or ``(B, F, H, W)`` without ``return_sequences``) and the
            final ``(h, c)``, so a long series can be streamed in pieces.
        """
        if x.dim() != 5 or x.shape[2] != self.in_channels:
            raise ValueError(f"ConvLSTM2D expects (B, T, {self.in_channels}, H, W), "
                             f"got {tuple(x.shape)}")
        if state is None:
            state = self.initial_state(x)
        elif self.channels_last:
            state = tuple(s.contiguous(memory_format=torch.channels_last) for s in state)
        folded = self.recurrent_activation == "sigmoid" and not torch.is_grad_enabled()
        gates = self.input_gates(x, folded)
        b, t, _, hh, ww = x.shape
        if self.channels_last and self.return_sequences:
            # frames stored NHWC, written in place: the next layer reads them without a copy
            out = x.new_empty((b, t, hh, ww, self.filters),
                              dtype=torch.float32).permute(0, 1, 4, 2, 3)
            for k in range(t):
                state = self.step(gates[:, k], state, folded)
                out[:, k] = state[0]
            return out, state
        outs = []
        for k in range(t):
            state = self.step(gates[:, k], state, folded)
            if self.return_sequences:
                outs.append(state[0])
        out = torch.stack(outs, dim=1) if self.return_sequences else state[0]
        return out, state


def is_channels_last_5d(x: torch.Tensor) -> bool:
    """Whether a ``(B, T, C, H, W)`` tensor stores channels innermost (per-frame NHWC)."""
    return x.dim() == 5 and x.shape[2] > 1 and x.stride(2) == 1


def to_channels_last_5d(x: torch.Tensor) -> torch.Tensor:
    """``(B, T, C, H, W)`` with NHWC frames, so ``reshape(B*T, C, H, W)`` is channels_last."""
    return x.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)


class ConvLSTMNet(nn.Module):
    """Stacked ConvLSTM2D layers followed by a per-day Conv2D head (the paper's hybrid).

    Parameters
    ----------
    in_channels : int
        Input channels per day.
    filters : sequence of int
        Filters of each ConvLSTM layer.
    kernel_size : int
        Kernel of the ConvLSTM layers.
    head_filters : int
        Filters of the hidden Conv2D head layer (0: a single 1x1 output convolution).
    head_kernel : int
        Kernel of the hidden head layer.
    recurrent_activation, unit_forget_bias
        Passed to each :class:`ConvLSTM2D`.

    Notes
    -----
    ``forward`` maps ``(B, T, C, H, W)`` to ``(B, T, H, W)`` (one value per pixel and
    day, in the normalised units of the target) and returns the final state of every layer.
    """

    def __init__(self, in_channels: int, filters: Sequence[int] = (16, 16),
                 kernel_size: int = 3, head_filters: int = 16, head_kernel: int = 3, *,
                 recurrent_activation: str = "sigmoid", unit_forget_bias: bool = True):
        super().__init__()
        self.in_channels = in_channels
        layers = []
        c = in_channels
        for f in filters:
            layers.append(ConvLSTM2D(c, int(f), kernel_size, return_sequences=True,
                                     unit_forget_bias=unit_forget_bias,
                                     recurrent_activation=recurrent_activation))
            c = int(f)
        self.convlstm = nn.ModuleList(layers)
        if head_filters > 0:
            self.head = nn.Sequential(
                nn.Conv2d(c, head_filters, head_kernel, padding=head_kernel // 2),
                nn.ReLU(),
                nn.Conv2d(head_filters, 1, 1),
            )
            self._head_radius = head_kernel // 2
        else:
            self.head = nn.Sequential(nn.Conv2d(c, 1, 1))
            self._head_radius = 0

    def receptive_radius(self, steps: int) -> int:
        """Pixels an input at day ``t`` can influence by day ``t + steps - 1`` (inclusive)."""
        return steps * sum(layer.radius for layer in self.convlstm) + self._head_radius

    def forward(self, x: torch.Tensor, state: list[State] | None = None
                ) -> tuple[torch.Tensor, list[State]]:
        """``(B, T, C, H, W)`` -> ``(B, T, H, W)`` and the final states of all layers."""
        states = []
        h = x
        for k, layer in enumerate(self.convlstm):
            h, s = layer(h, None if state is None else state[k])
            states.append(s)
        b, t, f, hh, ww = h.shape
        frames = h.reshape(b * t, f, hh, ww)
        if self.convlstm[0].channels_last:
            frames = frames.contiguous(memory_format=torch.channels_last)
        y = self.head(frames)
        return y.reshape(b, t, hh, ww), states

    def set_channels_last(self, flag: bool = True) -> ConvLSTMNet:
        """Keep weights and activations NHWC (faster on CPU with oneDNN); same results."""
        for layer in self.convlstm:
            layer.channels_last = flag
        fmt = torch.channels_last if flag else torch.contiguous_format
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.data = m.weight.data.contiguous(memory_format=fmt)
        return self


class NaiveConvLSTM2D(nn.Module):
    """Reference ConvLSTM: concatenate input and hidden state, one convolution per step.

    Mathematically the same layer as :class:`ConvLSTM2D` (same weights can be copied in
    with :meth:`from_layer`); used as the correctness oracle in tests and as the naive
    baseline of ``bench.inference``.
    """

    def __init__(self, in_channels: int, filters: int, kernel_size: int = 3):
        super().__init__()
        self.filters = filters
        self.conv = nn.Conv2d(in_channels + filters, 4 * filters, kernel_size,
                              padding=kernel_size // 2)

    @classmethod
    def from_layer(cls, layer: ConvLSTM2D) -> NaiveConvLSTM2D:
        """A naive layer holding exactly the weights of ``layer``."""
        naive = cls(layer.in_channels, layer.filters, layer.kernel_size)
        with torch.no_grad():
            naive.conv.weight.copy_(torch.cat([layer.input_conv.weight,
                                               layer.recurrent_conv.weight], dim=1))
            naive.conv.bias.copy_(layer.input_conv.bias)
        return naive

    def forward(self, x: torch.Tensor, state: State | None = None
                ) -> tuple[torch.Tensor, State]:
        b, t, _, hh, ww = x.shape
        if state is None:
            h = x.new_zeros((b, self.filters, hh, ww))
            c = torch.zeros_like(h)
        else:
            h, c = state
        outs = []
        for k in range(t):
            g = self.conv(torch.cat([x[:, k], h], dim=1))
            i, f, gg, o = torch.chunk(g, 4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(gg)
            h = torch.sigmoid(o) * torch.tanh(c)
            outs.append(h)
        return torch.stack(outs, dim=1), (h, c)
