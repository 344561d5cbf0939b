r"""The network's structure as data: layers, connections and their kinds.

A SPIDE network is a set of spiking layers and the connections between them, plus the input
that drives them and the readout that reads the last layer. :class:`Topology` builds them
once from a :class:`~spide_brian.config.SPIDEConfig` and the data's dimensions; the numpy
reference, the exact solver, the parameter initialisation, the Brian2 builder, the energy
counts and the checkpoints all iterate over it, so none of them re-derives the chain
``l -> l+1`` or parses parameter names.

A connection's *kind* says how its weights act; the first kind is :class:`Dense` (a matrix
``W[post, pre]``). A kind provides the four operations the method needs of a connection
(docs/method.md, M1-M4), batched over samples:

.. math::

    \text{propagate}:\ I_{post} = s_{pre} W^\top, \qquad
    \text{transpose}:\ u_{pre} = s^b_{post} W, \qquad
    \text{gradient}:\ \Delta W = (\beta_{post} m_{post})^\top a_{pre}

and the synapses of its Brian2 form (:meth:`Dense.synapse_indices`). A convolution with a
shared kernel (:class:`Conv2d`, :class:`ConvTranspose2d`), a locally connected layer
(:class:`LocallyConnected2d`) and average pooling (:class:`AvgPool2d`) are the other kinds,
with the same operations; :meth:`Dense.synapse_count` and its counterparts count one copy's
synapses without listing them.

A connection is a *feedback* connection when its post layer does not come after its pre
layer (``post <= pre``): its events arrive one step late in both timings, and its weight is
kept in a Frobenius ball of radius ``r`` (``restriction``, M5).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import math

import numpy as np

from .config import SPIDEConfig
from .models import ConvLayer, DenseLayer, LocalLayer, ModelError, named_model

__all__ = ["Dense", "Conv2d", "LocallyConnected2d", "ConvTranspose2d", "AvgPool2d", "Layer",
           "Connection", "Topology", "topology_of", "dimensions_of", "INPUT", "READOUT"]

#: Pseudo layer indices of the input and of the readout (they hold no spiking neurons).
INPUT = -1
READOUT = -2


@dataclass(frozen=True)
class Dense:
    """All-to-all connection with a weight matrix ``W`` of shape ``(n_post, n_pre)``."""

    name = "dense"
    #: Whether several synapses hold one element of the weight (a kernel shared by
    #: positions): its gradient is then a sum over them.
    shares_weights = False
    #: Whether the connection has weights to learn (a pooling connection is fixed).
    learns = True

    def parameter_shape(self, n_pre, n_post):
        """Shape of the connection's weight parameter."""
        return (n_post, n_pre)

    def propagate(self, weight, pre):
        """Input of the post layer from pre activity ``(B, n_pre)``: ``pre @ W.T``."""
        return pre @ weight.T

    def transpose(self, weight, post):
        """Input of the pre layer from post activity ``(B, n_post)``: ``post @ W``."""
        return post @ weight

    def gradient(self, post, pre):
        """Batch-summed outer product ``post.T @ pre`` (shape of the weight)."""
        return post.T @ pre

    def jacobian(self, weight):
        """The linear map ``pre -> post`` as a dense ``(n_post, n_pre)`` matrix."""
        return weight

    def synapse_indices(self, shape, transposed):
        """Brian2 ``(i, j)`` of the synapses of a weight of ``shape = (n_post, n_pre)``.

        A forward copy connects pre (Brian2 ``i``) to post (``j``), ordered pre-major; a
        transposed copy connects post to pre, ordered post-major. Synapse ``k`` holds
        ``W.T.ravel()[k]`` (forward) or ``W.ravel()[k]`` (transposed).
        """
        n_post, n_pre = shape
        if transposed:
            return np.repeat(np.arange(n_post), n_pre), np.tile(np.arange(n_pre), n_post)
        return np.repeat(np.arange(n_pre), n_post), np.tile(np.arange(n_post), n_pre)

    def kernel_elements(self, transposed, shape):
        """The flat (C order) element of ``W`` of ``shape`` that each synapse holds, in the
        order of :meth:`synapse_indices` (each element is held by one synapse)."""
        n_post, n_pre = shape
        if transposed:
            return np.arange(n_post * n_pre)
        return np.arange(n_post * n_pre).reshape(n_post, n_pre).T.ravel()

    def flatten(self, matrix, transposed):
        """Synapse-ordered values of a weight (see :meth:`synapse_indices`)."""
        matrix = np.asarray(matrix, dtype=np.float64)
        return (matrix if transposed else matrix.T).ravel().copy()

    def unflatten(self, values, shape, transposed):
        """Inverse of :meth:`flatten`."""
        n_post, n_pre = shape
        values = np.asarray(values, dtype=np.float64)
        if transposed:
            return values.reshape(n_post, n_pre).copy()
        return values.reshape(n_pre, n_post).T.copy()

    def fan_out(self, weight):
        """Synapses leaving each pre neuron (non-zero weights)."""
        return np.count_nonzero(weight, axis=0)

    def fan_in(self, weight):
        """Synapses reaching each post neuron (non-zero weights)."""
        return np.count_nonzero(weight, axis=1)

    def init_fan_in(self, shape):
        """Inputs per post neuron, for the initialisation's scale: ``n_pre``."""
        return shape[1]

    def synapse_count(self, shape):
        """Synapses of one weight copy: ``n_post n_pre``."""
        return int(shape[0]) * int(shape[1])

    #: Leading axes of the weight that index a post neuron's own row (``unit_row_norm``).
    row_axes = 1


def _covered(size, out, kernel, stride, padding):
    """Pairs ``(output position, kernel offset)`` along one axis whose input position
    ``stride * y + i - padding`` lies inside ``[0, size)``."""
    rows = stride * np.arange(out)[:, None] + np.arange(kernel)[None, :] - padding
    return int(np.count_nonzero((rows >= 0) & (rows < size)))


def _check_sizes(kind, numbers):
    """Raise naming the first of ``numbers`` (``{label: value}``) that is not an integer
    >= 1."""
    for label, value in numbers.items():
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{kind}: {label} must be an integer >= 1, got {value!r}")


@lru_cache(maxsize=8)
def _synapses_of(kind):
    """:meth:`Conv2d._synapses` of a (frozen, hashable) geometry, made read-only so that
    every caller can share them."""
    arrays = kind._make_synapses()
    for array in arrays:
        array.flags.writeable = False
    return arrays


@lru_cache(maxsize=8)
def _post_major_order_of(kind):
    """The permutation of :meth:`Conv2d._synapses` into post-major order (read-only)."""
    pre, post, _ = kind._synapses()
    order = np.lexsort((pre, post))
    order.flags.writeable = False
    return order


@dataclass(frozen=True)
class Conv2d:
    r"""2-D convolution with one kernel shared by every position of the post map.

    Layers hold maps flattened channel-major, ``(C, H, W) -> C H W`` neurons. The weight is
    the kernel ``K`` of shape ``(C_out, C_in, k_h, k_w)``; post neuron ``(o, y, x)`` receives

    .. math::

        I_{o,y,x} = \sum_{c,i,j} K_{o,c,i,j}\, s_{c,\,S y + i - P,\,S x + j - P}

    (stride ``S``, zero padding ``P``; pre positions outside the map contribute nothing), so
    the post map is ``H' = (H + 2P - k_h) // S + 1`` by ``W' = (W + 2P - k_w) // S + 1``.
    The same kernel element serves all ``H' W'`` positions: its gradient is the sum over
    them (and over the batch). :meth:`jacobian` is the equivalent dense matrix.

    Parameters
    ----------
    in_channels, out_channels : int
        ``C_in`` and ``C_out``.
    in_size : tuple of int
        ``(H, W)`` of the pre map.
    kernel : tuple of int
        ``(k_h, k_w)``.
    stride, padding : int
        ``S >= 1`` and ``P >= 0``.
    """

    in_channels: int
    out_channels: int
    in_size: tuple
    kernel: tuple = (3, 3)
    stride: int = 1
    padding: int = 0

    name = "conv2d"
    shares_weights = True
    learns = True

    def __post_init__(self):
        height, width = self.in_size
        kh, kw = self.kernel
        numbers = dict(in_channels=self.in_channels, out_channels=self.out_channels,
                       height=height, width=width, kernel_h=kh, kernel_w=kw,
                       stride=self.stride)
        _check_sizes("Conv2d", numbers)
        if not isinstance(self.padding, (int, np.integer)) or self.padding < 0:
            raise ValueError(f"Conv2d: padding must be an integer >= 0, got {self.padding!r}")
        if min(self.out_size) < 1:
            raise ValueError(f"Conv2d: a {kh}x{kw} kernel does not fit a {height}x{width} map "
                             f"with padding {self.padding}")

    @property
    def out_size(self):
        """``(H', W')`` of the post map."""
        (height, width), (kh, kw) = self.in_size, self.kernel
        return ((height + 2 * self.padding - kh) // self.stride + 1,
                (width + 2 * self.padding - kw) // self.stride + 1)

    @property
    def n_pre(self):
        return self.in_channels * self.in_size[0] * self.in_size[1]

    @property
    def n_post(self):
        return self.out_channels * self.out_size[0] * self.out_size[1]

    def parameter_shape(self, n_pre, n_post):
        """``(C_out, C_in, k_h, k_w)``; ``n_pre`` and ``n_post`` must be the maps' sizes."""
        if (n_pre, n_post) != (self.n_pre, self.n_post):
            raise ValueError(f"Conv2d maps {self.n_pre} pre neurons ({self.in_channels}x"
                             f"{self.in_size[0]}x{self.in_size[1]}) to {self.n_post} post "
                             f"neurons; the layers have {n_pre} and {n_post}")
        return (self.out_channels, self.in_channels, *self.kernel)

    def _windows(self, pre):
        """``(B, C_in, H', W', k_h, k_w)`` view of the padded pre maps."""
        pre = np.asarray(pre, dtype=np.float64).reshape(-1, self.in_channels, *self.in_size)
        p, s = self.padding, self.stride
        padded = np.pad(pre, ((0, 0), (0, 0), (p, p), (p, p)))
        windows = np.lib.stride_tricks.sliding_window_view(padded, self.kernel, axis=(2, 3))
        return windows[:, :, ::s, ::s][:, :, :self.out_size[0], :self.out_size[1]]

    def propagate(self, weight, pre):
        """Input of the post maps from pre activity ``(B, n_pre)``: the convolution."""
        out = np.einsum("bchwij,ocij->bohw", self._windows(pre), weight, optimize=True)
        return out.reshape(len(out), self.n_post)

    def transpose(self, weight, post):
        """Input of the pre maps from post activity ``(B, n_post)``: the adjoint
        (transposed convolution), ``post @ J``."""
        post = np.asarray(post, dtype=np.float64).reshape(-1, self.out_channels,
                                                          *self.out_size)
        (height, width), p, s = self.in_size, self.padding, self.stride
        (oh, ow), (kh, kw) = self.out_size, self.kernel
        padded = np.zeros((len(post), self.in_channels, height + 2 * p, width + 2 * p))
        for i in range(kh):
            for j in range(kw):
                padded[:, :, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s] += np.einsum(
                    "bohw,oc->bchw", post, weight[:, :, i, j], optimize=True)
        return padded[:, :, p:p + height, p:p + width].reshape(len(post), self.n_pre)

    def gradient(self, post, pre):
        """Batch- and position-summed ``sum_{b,y,x} post[b,o,y,x] pre[b,c,Sy+i-P,Sx+j-P]``."""
        post = np.asarray(post, dtype=np.float64).reshape(-1, self.out_channels,
                                                          *self.out_size)
        return np.einsum("bohw,bchwij->ocij", post, self._windows(pre), optimize=True)

    def jacobian(self, weight):
        """The linear map ``pre -> post`` as a dense ``(n_post, n_pre)`` matrix."""
        return self.propagate(weight, np.eye(self.n_pre)).T

    def _synapses(self):
        """``(pre, post, kernel element)`` of every synapse, kernel elements flat over
        ``(C_out, C_in, k_h, k_w)``; pre-major order. Read-only arrays, computed once per
        geometry (the last few are kept)."""
        return _synapses_of(self)

    def _make_synapses(self):
        (height, width), (oh, ow), (kh, kw) = self.in_size, self.out_size, self.kernel
        o, c, i, j, y, x = np.meshgrid(np.arange(self.out_channels),
                                       np.arange(self.in_channels), np.arange(kh),
                                       np.arange(kw), np.arange(oh), np.arange(ow),
                                       indexing="ij")
        row = self.stride * y + i - self.padding
        column = self.stride * x + j - self.padding
        inside = (row >= 0) & (row < height) & (column >= 0) & (column < width)
        pre = ((c * height + row) * width + column)[inside]
        post = ((o * oh + y) * ow + x)[inside]
        element = self._element(o, c, i, j, y, x)[inside]
        order = np.lexsort((post, pre))
        return pre[order], post[order], element[order]


    def _element(self, o, c, i, j, y, x):
        """Flat index into the weight of the synapse ``(o, c, i, j)`` at post position
        ``(y, x)``: the kernel element, whatever the position."""
        (kh, kw) = self.kernel
        return ((o * self.in_channels + c) * kh + i) * kw + j

    def synapse_indices(self, shape, transposed):
        """Brian2 ``(i, j)`` of the synapses: pre to post (forward, pre-major) or post to pre
        (transposed, post-major); no synapse for a padded position."""
        pre, post, _ = self._synapses()
        if transposed:
            order = _post_major_order_of(self)
            return post[order], pre[order]
        return pre, post

    def kernel_elements(self, transposed, shape=None):
        """The kernel element (flat index into ``K``) that each synapse holds, in the order
        of :meth:`synapse_indices`: the map from synapses to the parameter they share
        (``shape``, the weight's, is implied by the kind)."""
        _, _, element = self._synapses()
        if transposed:
            return element[_post_major_order_of(self)]
        return element

    def flatten(self, kernel, transposed):
        """Synapse-ordered values: each synapse holds its kernel element."""
        return np.asarray(kernel, dtype=np.float64).ravel()[self.kernel_elements(transposed)]

    def unflatten(self, values, shape, transposed):
        """The kernel from synapse values, which must agree for every shared element."""
        values = np.asarray(values, dtype=np.float64)
        elements = self.kernel_elements(transposed)
        kernel = np.zeros(int(np.prod(shape)))
        kernel[elements] = values
        if not np.array_equal(kernel[elements], values):
            raise ValueError("Conv2d: synapses that share a kernel element hold different "
                             "values")
        return kernel.reshape(shape)

    def fan_out(self, weight):
        """Synapses with a non-zero kernel element leaving each pre neuron."""
        pre, _, element = self._synapses()
        used = np.asarray(weight).ravel()[element] != 0
        return np.bincount(pre[used], minlength=self.n_pre)

    def fan_in(self, weight):
        """Synapses with a non-zero kernel element reaching each post neuron."""
        _, post, element = self._synapses()
        used = np.asarray(weight).ravel()[element] != 0
        return np.bincount(post[used], minlength=self.n_post)

    def init_fan_in(self, shape):
        """Inputs per post neuron of the unpadded kernel: ``C_in k_h k_w``."""
        return self.in_channels * self.kernel[0] * self.kernel[1]

    def synapse_count(self, shape=None):
        """Synapses of one weight copy (padded positions make none), without listing them:
        ``C_out C_in`` times the covered (position, offset) pairs of each axis."""
        (height, width), (oh, ow), (kh, kw) = self.in_size, self.out_size, self.kernel
        return (self.out_channels * self.in_channels
                * _covered(height, oh, kh, self.stride, self.padding)
                * _covered(width, ow, kw, self.stride, self.padding))

    def live_weights(self):
        """Every kernel element is held by some synapse: an all-True mask."""
        return np.ones(self.parameter_shape(self.n_pre, self.n_post), dtype=bool)

    row_axes = 1


@dataclass(frozen=True)
class LocallyConnected2d(Conv2d):
    r"""The receptive fields of a :class:`Conv2d`, each post neuron with a filter of its own.

    Post neuron ``(o, y, x)`` receives

    .. math::

        I_{o,y,x} = \sum_{c,i,j} W_{o,y,x,c,i,j}\, s_{c,\,S y + i - P,\,S x + j - P},

    so no weight is shared and every synapse learns from its own pre and post neurons
    only: a purely local rule, the biologically plausible counterpart of a convolution.
    The weight has shape ``(C_out, H', W', C_in, k_h, k_w)``; the elements whose input lies
    in the padding reach no neuron (no synapse holds them, their gradient is 0) and start
    at 0 (:meth:`live_weights`), so a weight read back from the synapses is the weight.
    """

    name = "locally_connected2d"
    shares_weights = False

    #: ``(o, y, x)``: the first three axes of the weight index a post neuron.
    row_axes = 3

    def parameter_shape(self, n_pre, n_post):
        """``(C_out, H', W', C_in, k_h, k_w)``; ``n_pre`` and ``n_post`` must be the maps'
        sizes."""
        super().parameter_shape(n_pre, n_post)
        return (self.out_channels, *self.out_size, self.in_channels, *self.kernel)

    def propagate(self, weight, pre):
        """Input of the post maps from pre activity ``(B, n_pre)``."""
        out = np.einsum("bchwij,ohwcij->bohw", self._windows(pre), weight, optimize=True)
        return out.reshape(len(out), self.n_post)

    def transpose(self, weight, post):
        """Input of the pre maps from post activity ``(B, n_post)``: ``post @ J``."""
        post = np.asarray(post, dtype=np.float64).reshape(-1, self.out_channels,
                                                          *self.out_size)
        (height, width), p, s = self.in_size, self.padding, self.stride
        (oh, ow), (kh, kw) = self.out_size, self.kernel
        padded = np.zeros((len(post), self.in_channels, height + 2 * p, width + 2 * p))
        for i in range(kh):
            for j in range(kw):
                padded[:, :, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s] += np.einsum(
                    "bohw,ohwc->bchw", post, weight[..., i, j], optimize=True)
        return padded[:, :, p:p + height, p:p + width].reshape(len(post), self.n_pre)

    def gradient(self, post, pre):
        """Batch-summed ``sum_b post[b,o,y,x] pre[b,c,Sy+i-P,Sx+j-P]`` (no sum over
        positions)."""
        post = np.asarray(post, dtype=np.float64).reshape(-1, self.out_channels,
                                                          *self.out_size)
        return np.einsum("bohw,bchwij->ohwcij", post, self._windows(pre), optimize=True)

    def _element(self, o, c, i, j, y, x):
        (oh, ow), (kh, kw) = self.out_size, self.kernel
        return ((((o * oh + y) * ow + x) * self.in_channels + c) * kh + i) * kw + j

    def live_weights(self):
        """Boolean mask of the weight's elements that a synapse holds (the others read the
        padding)."""
        shape = self.parameter_shape(self.n_pre, self.n_post)
        mask = np.zeros(int(np.prod(shape)), dtype=bool)
        mask[self._synapses()[2]] = True
        return mask.reshape(shape)

    def init_fan_in(self, shape):
        """Inputs per post neuron of an unpadded filter: ``C_in k_h k_w``."""
        return self.in_channels * self.kernel[0] * self.kernel[1]


@dataclass(frozen=True)
class ConvTranspose2d:
    r"""Transposed convolution: the adjoint of a :class:`Conv2d`, e.g. a feedback map that
    upsamples the last layer's small maps onto the first layer's large ones.

    ``conv`` describes the convolution from the *post* maps to the *pre* maps (so its
    ``in_size`` is the post map's size); this kind sends pre activity through
    :math:`J^\top` of that convolution. The weight is the convolution's kernel, shape
    ``(C_pre, C_post, k_h, k_w)``, shared by every position.
    """

    conv: Conv2d

    name = "conv_transpose2d"
    learns = True

    @property
    def shares_weights(self):
        return self.conv.shares_weights

    @property
    def n_pre(self):
        return self.conv.n_post

    @property
    def n_post(self):
        return self.conv.n_pre

    def parameter_shape(self, n_pre, n_post):
        if (n_pre, n_post) != (self.n_pre, self.n_post):
            raise ValueError(f"ConvTranspose2d maps {self.n_pre} pre neurons to "
                             f"{self.n_post} post neurons; the layers have {n_pre} and "
                             f"{n_post}")
        return self.conv.parameter_shape(self.conv.n_pre, self.conv.n_post)

    def propagate(self, weight, pre):
        return self.conv.transpose(weight, pre)

    def transpose(self, weight, post):
        return self.conv.propagate(weight, post)

    def gradient(self, post, pre):
        return self.conv.gradient(pre, post)

    def jacobian(self, weight):
        return self.conv.jacobian(weight).T

    def synapse_indices(self, shape, transposed):
        # this kind's forward synapses are the convolution's transposed ones, and back
        return self.conv.synapse_indices(shape, not transposed)

    def kernel_elements(self, transposed, shape=None):
        return self.conv.kernel_elements(not transposed)

    def flatten(self, kernel, transposed):
        return self.conv.flatten(kernel, not transposed)

    def unflatten(self, values, shape, transposed):
        return self.conv.unflatten(values, shape, not transposed)

    def fan_out(self, weight):
        return self.conv.fan_in(weight)

    def fan_in(self, weight):
        return self.conv.fan_out(weight)

    def init_fan_in(self, shape):
        """Mean synapses per post neuron (a transposed convolution's vary with position)."""
        return max(1, int(round(self.synapse_count() / self.n_post)))

    def synapse_count(self, shape=None):
        return self.conv.synapse_count()

    def live_weights(self):
        return self.conv.live_weights()

    @property
    def row_axes(self):
        return self.conv.row_axes


@dataclass(frozen=True)
class AvgPool2d:
    r"""Average pooling: each post neuron is the mean of a ``k x k`` block of one pre map,

    .. math::

        I_{c,y,x} = \frac{1}{k^2} \sum_{i,j < k} s_{c,\,k y + i,\,k x + j}

    (stride ``k``, no padding; rows and columns beyond the last whole block are not read).
    The connection is fixed: its weight parameter is empty (shape ``(0,)``, nothing to
    learn), every synapse holds ``1 / k^2``, and its gradient is empty.

    Parameters
    ----------
    channels : int
        Maps of the pre layer (and of the post layer).
    in_size : tuple of int
        ``(H, W)`` of the pre maps; the post maps are ``(H // k, W // k)``.
    kernel : int
        ``k``.
    """

    channels: int
    in_size: tuple
    kernel: int = 2

    name = "avg_pool2d"
    shares_weights = False
    learns = False

    def __post_init__(self):
        _check_sizes("AvgPool2d", dict(channels=self.channels, kernel=self.kernel,
                                       height=self.in_size[0], width=self.in_size[1]))
        if min(self.out_size) < 1:
            raise ValueError(f"AvgPool2d: a {self.kernel}x{self.kernel} pool does not fit a "
                             f"{self.in_size[0]}x{self.in_size[1]} map")

    @property
    def out_size(self):
        return (self.in_size[0] // self.kernel, self.in_size[1] // self.kernel)

    @property
    def n_pre(self):
        return self.channels * self.in_size[0] * self.in_size[1]

    @property
    def n_post(self):
        return self.channels * self.out_size[0] * self.out_size[1]

    @property
    def value(self):
        """The weight every synapse holds, ``1 / k^2``."""
        return 1.0 / (self.kernel * self.kernel)

    def parameter_shape(self, n_pre, n_post):
        """``(0,)``: nothing to learn; ``n_pre`` and ``n_post`` must be the maps' sizes."""
        if (n_pre, n_post) != (self.n_pre, self.n_post):
            raise ValueError(f"AvgPool2d maps {self.n_pre} pre neurons to {self.n_post} post "
                             f"neurons; the layers have {n_pre} and {n_post}")
        return (0,)

    def _blocks(self, pre):
        """``(B, C, H', k, W', k)`` view of the pre maps' whole blocks."""
        (oh, ow), k = self.out_size, self.kernel
        pre = np.asarray(pre, dtype=np.float64).reshape(-1, self.channels, *self.in_size)
        return pre[:, :, :oh * k, :ow * k].reshape(len(pre), self.channels, oh, k, ow, k)

    def propagate(self, weight, pre):
        """Block means of the pre maps (``weight`` is the empty parameter)."""
        out = self._blocks(pre).sum(axis=(3, 5)) * self.value
        return out.reshape(len(out), self.n_post)

    def transpose(self, weight, post):
        """The adjoint: each pre neuron receives ``1 / k^2`` of its block's post value."""
        (height, width), (oh, ow), k = self.in_size, self.out_size, self.kernel
        post = np.asarray(post, dtype=np.float64).reshape(-1, self.channels, oh, ow)
        spread = np.repeat(np.repeat(post * self.value, k, axis=2), k, axis=3)
        pre = np.zeros((len(post), self.channels, height, width))
        pre[:, :, :oh * k, :ow * k] = spread
        return pre.reshape(len(post), self.n_pre)

    def gradient(self, post, pre):
        """Empty: a fixed connection learns nothing."""
        return np.zeros(0)

    def jacobian(self, weight):
        return self.propagate(weight, np.eye(self.n_pre)).T

    def _synapses(self):
        """``(pre, post)`` of every synapse, pre-major order."""
        (height, width), (oh, ow), k = self.in_size, self.out_size, self.kernel
        c, y, x, i, j = np.meshgrid(np.arange(self.channels), np.arange(oh), np.arange(ow),
                                    np.arange(k), np.arange(k), indexing="ij")
        pre = ((c * height + k * y + i) * width + k * x + j).ravel()
        post = ((c * oh + y) * ow + x).ravel()
        order = np.lexsort((post, pre))
        return pre[order], post[order]

    def synapse_indices(self, shape, transposed):
        pre, post = self._synapses()
        if transposed:
            order = np.lexsort((pre, post))
            return post[order], pre[order]
        return pre, post

    def flatten(self, weight, transposed):
        """Every synapse holds ``1 / k^2``."""
        return np.full(self.channels * self.out_size[0] * self.out_size[1]
                       * self.kernel ** 2, self.value)

    def unflatten(self, values, shape, transposed):
        values = np.asarray(values, dtype=np.float64)
        if not np.all(values == self.value):
            raise ValueError(f"AvgPool2d: every synapse holds {self.value}")
        return np.zeros(0)

    def fan_out(self, weight):
        pre, _ = self._synapses()
        return np.bincount(pre, minlength=self.n_pre)

    def fan_in(self, weight):
        _, post = self._synapses()
        return np.bincount(post, minlength=self.n_post)

    def init_fan_in(self, shape):
        return self.kernel * self.kernel

    def synapse_count(self, shape=None):
        """One synapse per pre neuron of a whole block."""
        (oh, ow), k = self.out_size, self.kernel
        return self.channels * oh * k * ow * k

    row_axes = 1


@dataclass(frozen=True)
class Layer:
    """A spiking layer: ``size`` forward neurons and as many ternary couples."""

    index: int
    size: int
    channels: int = None
    #: Whether the layer has a bias current (a pooling layer has none: its bias is the
    #: empty parameter).
    has_bias: bool = True

    @property
    def name(self):
        return f"layer{self.index}"

    @property
    def bias(self):
        """Name of the layer's bias parameter (a constant current, shape ``(bias_size,)``)."""
        return f"bias_{self.index}"

    @property
    def shares_bias(self):
        """Whether the bias is one value per channel, shared by the positions of its map."""
        return self.has_bias and self.channels is not None

    @property
    def bias_size(self):
        """One bias per neuron, or per channel of a layer of ``channels`` maps (shared by
        the positions of a map, as a convolution's bias is); 0 without a bias."""
        if not self.has_bias:
            return 0
        return self.size if self.channels is None else self.channels

    def expand_bias(self, bias):
        """The bias current of every neuron (channel-major maps; zeros without a bias)."""
        if not self.has_bias:
            return np.zeros(self.size)
        if self.channels is None:
            return bias
        return np.repeat(bias, self.size // self.channels)

    def reduce_bias(self, per_neuron):
        """A per-neuron gradient summed over each map's positions (its shared bias's;
        empty without a bias)."""
        if not self.has_bias:
            return np.zeros(0)
        if self.channels is None:
            return per_neuron
        return np.asarray(per_neuron).reshape(self.channels, -1).sum(axis=1)


@dataclass(frozen=True)
class Connection:
    """Weights from layer ``pre`` to layer ``post`` (:data:`INPUT` / :data:`READOUT` for the
    input and the readout).

    Parameters
    ----------
    parameter : str
        Name of the weight parameter (``input_weight``, ``weight_l``, ``feedback_weight``,
        ``readout_weight``).
    pre, post : int
        Layer indices.
    shape : tuple of int
        Shape of the weight parameter.
    kind : Dense, Conv2d, LocallyConnected2d, ConvTranspose2d or AvgPool2d
        How the weights act.
    init : str
        Initialisation (``kaiming``, ``unit_row_norm`` or ``uniform`` for the readout).
    restriction : float or None
        Radius of the Frobenius ball the weight is kept in (feedback connections).
    init_scale : float
        Factor of the drawn weight (before the restriction).
    dropout : float or None
        Drop probability of the connection's current; None: the config's ``dropout``.
    """

    parameter: str
    pre: int
    post: int
    shape: tuple
    kind: Dense
    init: str
    restriction: float = None
    init_scale: float = 1.0
    dropout: float = None

    @property
    def is_input(self):
        return self.pre == INPUT

    @property
    def is_readout(self):
        return self.post == READOUT

    @property
    def is_spiking(self):
        """Between two spiking layers (carries forward spikes and backward ternary spikes)."""
        return not (self.is_input or self.is_readout)

    @property
    def is_feedback(self):
        """Runs back to the same or an earlier layer: its events arrive one step late."""
        return self.is_spiking and self.post <= self.pre


@dataclass(frozen=True)
class Topology:
    """Layers and connections of a SPIDE network.

    Built with :meth:`from_config`. Connections are ordered: the input, the feed-forward
    chain, the feedback connections, the readout; within a layer's inputs this is also the
    order in which currents are summed.

    Examples
    --------
    >>> from spide_brian.config import SPIDEConfig
    >>> topology = Topology.from_config(SPIDEConfig(hidden_sizes=(20, 10)), 8, 3)
    >>> [(c.parameter, c.pre, c.post) for c in topology.spiking]
    [('weight_0', 0, 1), ('feedback_weight', 1, 0)]
    >>> list(topology.parameter_shapes())[:3]
    ['input_weight', 'bias_0', 'bias_1']
    """

    n_inputs: int
    n_classes: int
    layers: tuple
    connections: tuple

    @classmethod
    def from_config(cls, config, n_inputs, n_classes):
        """The layered chain of ``config.hidden_sizes``, with the feedback from the last
        layer to the first when ``config.feedback``; the named network of ``config.model``
        (:meth:`from_model`) when it is set."""
        if config.model:
            return cls.from_model(named_model(config.model), config, n_inputs, n_classes)
        dense = Dense()
        sizes = config.hidden_sizes
        layers = tuple(Layer(index, size) for index, size in enumerate(sizes))
        last = len(sizes) - 1
        connections = [Connection("input_weight", INPUT, 0, dense.parameter_shape(n_inputs, sizes[0]),
                                  dense, config.input_init)]
        for layer in range(last):
            connections.append(Connection(f"weight_{layer}", layer, layer + 1,
                                          dense.parameter_shape(sizes[layer], sizes[layer + 1]),
                                          dense, config.hidden_init))
        if config.feedback:
            connections.append(Connection("feedback_weight", last, 0,
                                          dense.parameter_shape(sizes[last], sizes[0]), dense,
                                          config.feedback_init, config.feedback_norm))
        connections.append(Connection("readout_weight", last, READOUT,
                                      dense.parameter_shape(sizes[last], n_classes), dense,
                                      "uniform"))
        return cls(int(n_inputs), int(n_classes), layers, tuple(connections))

    @classmethod
    def from_model(cls, model, config, n_inputs, n_classes):
        """The network of the :class:`~spide_brian.models.NamedModel` ``model`` for inputs of
        ``n_inputs`` values (``in_channels`` square maps) and ``n_classes`` classes.

        Raises
        ------
        ModelError
            If the input is not ``in_channels`` square maps, or a layer's map would vanish.
        """
        side = math.isqrt(max(0, int(n_inputs) // model.in_channels)) if n_inputs else 0
        if n_inputs and side * side * model.in_channels != n_inputs:
            raise ModelError(f"model {model.name!r} takes {model.in_channels}-channel square "
                             f"images; {n_inputs} inputs are not {model.in_channels} square "
                             "maps")
        # without data (names and shapes only) any input the layers fit will do
        size = (side, side) if n_inputs else (4 * downsampling(model),) * 2
        try:
            kinds, layers = _model_layers(model, size)
            feedback_kind = None
            if model.feedback is not None and config.feedback:
                feedback_kind = _model_feedback(model, kinds[0], layers)
        except ValueError as error:
            if isinstance(error, ModelError):
                raise
            raise ModelError(f"model {model.name!r} cannot take {side} x {side} inputs: "
                             f"{error}") from None
        dropouts = [getattr(spec, "dropout", None) for spec in model.layers]
        connections = [Connection("input_weight", INPUT, 0,
                                  kinds[0].parameter_shape(kinds[0].n_pre, kinds[0].n_post),
                                  kinds[0], config.input_init, dropout=dropouts[0])]
        for index in range(1, len(kinds)):
            kind = kinds[index]
            connections.append(Connection(f"weight_{index - 1}", index - 1, index,
                                          kind.parameter_shape(layers[index - 1].size,
                                                               layers[index].size),
                                          kind, config.hidden_init, dropout=dropouts[index]))
        if feedback_kind is not None:
            connections.append(Connection(
                "feedback_weight", len(layers) - 1, 0,
                feedback_kind.parameter_shape(feedback_kind.n_pre, feedback_kind.n_post),
                feedback_kind, config.feedback_init, config.feedback_norm,
                init_scale=model.feedback.init_scale))
        dense = Dense()
        connections.append(Connection("readout_weight", len(layers) - 1, READOUT,
                                      dense.parameter_shape(layers[-1].size, n_classes),
                                      dense, "uniform"))
        return cls(int(n_inputs), int(n_classes), tuple(layers), tuple(connections))

    @classmethod
    def from_parameters(cls, params):
        """The chain whose parameters are ``params`` (the inverse of
        :meth:`parameter_shapes`): layer sizes from the biases, the feedback connection if
        its weight is present. For code that is given parameters without a config."""
        sizes = []
        while Layer(len(sizes), 0).bias in params:
            sizes.append(int(np.shape(params[Layer(len(sizes), 0).bias])[0]))
        if not sizes:
            raise ValueError("the parameters hold no spiking layer (no bias_0)")
        with_feedback = cls.from_config(SPIDEConfig(hidden_sizes=tuple(sizes)), 0, 0)
        feedback = any(c.parameter in params for c in with_feedback.restricted)
        return topology_of(SPIDEConfig(hidden_sizes=tuple(sizes), feedback=feedback), params)

    # -- views --------------------------------------------------------------------------------
    @property
    def n_layers(self):
        return len(self.layers)

    @property
    def input(self):
        """The connection from the input to the first layer."""
        return next(c for c in self.connections if c.is_input)

    @property
    def readout(self):
        """The connection from the last layer to the readout."""
        return next(c for c in self.connections if c.is_readout)

    @property
    def spiking(self):
        """Connections between spiking layers (feed-forward first, then feedback)."""
        return tuple(c for c in self.connections if c.is_spiking)

    @property
    def restricted(self):
        """Connections whose weight is kept in a Frobenius ball."""
        return tuple(c for c in self.connections if c.restriction is not None)

    @cached_property
    def _by_layer(self):
        """``(incoming, outgoing)``: the spiking connections of each layer, found once
        (the simulations ask for them at every step)."""
        return ({layer.index: tuple(c for c in self.spiking if c.post == layer.index)
                 for layer in self.layers},
                {layer.index: tuple(c for c in self.spiking if c.pre == layer.index)
                 for layer in self.layers})

    def incoming(self, layer):
        """Spiking connections into ``layer``, in summation order."""
        return self._by_layer[0][layer]

    def outgoing(self, layer):
        """Spiking connections out of ``layer``, in summation order (of the backward stage)."""
        return self._by_layer[1][layer]

    def connection(self, parameter):
        """The connection whose weight is ``parameter``."""
        for candidate in self.connections:
            if candidate.parameter == parameter:
                return candidate
        raise KeyError(f"no connection has the weight {parameter!r}")

    # -- parameters ---------------------------------------------------------------------------
    @property
    def readout_bias(self):
        """Name of the readout's bias parameter."""
        return "readout_bias"

    def parameter_shapes(self):
        """Ordered mapping ``name -> shape`` of every trainable array: the input weight, the
        layers' biases, the spiking connections' weights, the readout weight and bias."""
        shapes = {self.input.parameter: self.input.shape}
        for layer in self.layers:
            shapes[layer.bias] = (layer.bias_size,)
        for connection in self.spiking:
            shapes[connection.parameter] = connection.shape
        shapes[self.readout.parameter] = self.readout.shape
        shapes[self.readout_bias] = (self.n_classes,)
        return shapes

    def connectivity(self, params):
        """``params`` as dense-network arrays: each weight of a shared-kernel kind as its
        ``(n_post, n_pre)`` Jacobian (a ``scipy.sparse`` matrix of the synapses' values),
        each per-channel bias expanded to its neurons. A network of dense connections and
        per-neuron biases gets ``params`` itself. For code that reads a network as
        matrices (the operation counts of :mod:`spide_brian.energy`)."""
        if all(isinstance(c.kind, Dense) for c in self.connections) and \
                all(layer.channels is None for layer in self.layers):
            return params
        from scipy import sparse

        matrices = dict(params)
        for connection in self.connections:
            kind = connection.kind
            if isinstance(kind, Dense) or connection.parameter not in params:
                continue
            pre, post = kind.synapse_indices(connection.shape, transposed=False)
            values = kind.flatten(params[connection.parameter], transposed=False)
            matrices[connection.parameter] = sparse.csr_matrix(
                (values, (post, pre)), shape=(kind.n_post, kind.n_pre))
        for layer in self.layers:
            if layer.bias in params:
                matrices[layer.bias] = layer.expand_bias(np.asarray(params[layer.bias]))
        return matrices

    def bias_owner(self, name):
        """Layer index that holds bias ``name``, or :data:`READOUT`."""
        if name == self.readout_bias:
            return READOUT
        for layer in self.layers:
            if layer.bias == name:
                return layer.index
        raise KeyError(f"no layer has the bias {name!r}")


def downsampling(model):
    """Factor by which the strides and pools of ``model`` shrink a map's side (up to its
    first dense layer)."""
    factor = 1
    for spec in model.layers:
        if isinstance(spec, DenseLayer):
            break
        factor *= spec.stride if isinstance(spec, (ConvLayer, LocalLayer)) else spec.kernel
    return factor


def _model_layers(model, size):
    """Kinds of the connections into each spiking layer of ``model`` (layer 0's from the
    input maps of ``size``) and the layers."""
    channels, kinds, layers = model.in_channels, [], []
    for index, spec in enumerate(model.layers):
        if isinstance(spec, (ConvLayer, LocalLayer)):
            maps = Conv2d if isinstance(spec, ConvLayer) else LocallyConnected2d
            kind = maps(channels, spec.channels, size, (spec.kernel, spec.kernel),
                        spec.stride, (spec.kernel - 1) // 2)
            layer = Layer(index, kind.n_post, spec.channels)
            channels, size = spec.channels, kind.out_size
        elif isinstance(spec, DenseLayer):
            if index == 0:
                raise ModelError(f"model {model.name!r}: layer 0 must be a convolution")
            kind, layer = Dense(), Layer(index, spec.size)
            channels, size = None, None
        else:                                          # a PoolLayer
            if size is None:
                raise ModelError(f"model {model.name!r}: layer {index} pools a layer that "
                                 "has no maps")
            kind = AvgPool2d(channels, size, spec.kernel)
            layer = Layer(index, kind.n_post, channels, has_bias=False)
            size = kind.out_size
        kinds.append(kind)
        layers.append(layer)
    return kinds, layers


def _model_feedback(model, first, layers):
    """The kind of ``model``'s feedback map from its last layer to layer 0 (reached from
    the input by the convolution ``first``)."""
    spec, last = model.feedback, model.layers[-1]
    if not isinstance(last, (ConvLayer, LocalLayer)):
        raise ModelError(f"model {model.name!r}: the feedback needs maps in the last layer")
    ends = (model.layers[0].channels, last.channels)
    maps = LocallyConnected2d if spec.local else Conv2d
    if spec.transposed:
        conv = maps(*ends, first.out_size, (spec.kernel, spec.kernel), spec.stride,
                    (spec.kernel - 1) // 2)
        kind = ConvTranspose2d(conv)
    else:
        side = math.isqrt(layers[-1].size // last.channels)
        kind = maps(*reversed(ends), (side, side), (spec.kernel, spec.kernel), spec.stride,
                    (spec.kernel - 1) // 2)
    if kind.n_post != layers[0].size or kind.n_pre != layers[-1].size:
        raise ModelError(f"model {model.name!r}: the feedback map does not fit the maps of "
                         "the last layer and layer 0")
    return kind


#: Largest input side searched for a named model's input size (see :func:`dimensions_of`).
MAX_MODEL_SIDE = 1024


def dimensions_of(config, params):
    """``(n_inputs, n_classes)`` of the network whose parameters are ``params`` (0 where
    ``params`` lacks the weight that tells).

    A dense input weight has one column per input. A kernel fits any image size, so for a
    named model the input is the square image for which the model's parameters have the
    shapes of ``params`` (the readout's columns, a dense layer's); strided layers and pools
    map several sides to one size (7 and 8 both give 4 after a stride of 2), and the largest
    side that the strides and pools divide is taken, as the models' datasets have. Code
    that knows the data's size passes it instead.
    """
    names = Topology.from_config(config, 0, 0)
    readout = params.get(names.readout.parameter)
    n_classes = int(np.shape(readout)[0]) if readout is not None else 0
    weight = params.get(names.input.parameter)
    if weight is None:
        return 0, n_classes
    if not config.model:
        return int(np.shape(weight)[-1]), n_classes
    if readout is None:
        return 0, n_classes
    model = named_model(config.model)
    shapes = {name: np.shape(value) for name, value in params.items()}
    fitting = []
    for side in range(1, MAX_MODEL_SIDE + 1):
        try:
            topology = Topology.from_config(config, model.in_channels * side * side, n_classes)
        except ModelError:
            continue
        expected = topology.parameter_shapes()
        if all(expected[name] == shape for name, shape in shapes.items() if name in expected):
            fitting.append(side)
        elif topology.layers[-1].size > np.shape(readout)[1] and not any(
                isinstance(spec, DenseLayer) for spec in model.layers):
            break
    if fitting:
        whole = [side for side in fitting if side % downsampling(model) == 0]
        side = max(whole or fitting)
        return model.in_channels * side * side, n_classes
    raise ModelError(f"no input size of model {config.model!r} fits the shapes of its "
                     "parameters")


def topology_of(config, params):
    """The topology of ``config`` with the input and class dimensions of ``params``
    (:func:`dimensions_of`; 0 where ``params`` lacks them)."""
    return Topology.from_config(config, *dimensions_of(config, params))
