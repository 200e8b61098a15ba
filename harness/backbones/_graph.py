"""Where a network can be cut for fine-tuning, found from its graph, and the exact split at a cut.

Below the cut is frozen and its output cached as features; the top is trained on them, so a cut
must carry everything the top needs: everything after it depends on the image only through it.
In a chain every layer is such a point; in a residual or dense network only the block outputs
are (a skip connection crossing a layer makes it no cut). NASNet's cells each read the two
previous cells' outputs, so after its stem no single layer is a cut: there (only where cell
boundaries give more stages than single layers do) a cut is a cell output together with the
previous cell output it passes on, of the same spatial size, cached side by side on the channel
axis and taken apart again by the top.

The top stage is what comes after the last change of spatial size (a stride or a pool): the cut
is the last cut point before the stage's first weighted layer; the padding a strided convolution
reads belongs to it, and an inverted-residual block that downsamples (MobileNetV2/V3,
EfficientNet) is cut before the 1x1 convolution that widens its input, not inside the block.
Each change of size below that is one more stage. Channels last throughout (the Keras default;
keras.applications' NASNet needs it).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from harness.errors import HarnessError


@dataclass(frozen=True)
class Graph:
    """The base's calls in topological order (the image input first)."""

    nodes: list  # keras Node objects
    names: list[str]  # the operation (layer) each node calls
    parents: list[list[int]]
    ancestors: list[int]  # bitsets: bit j of ancestors[i] set when node j feeds node i (i included)
    consumers: list[int]  # bitsets: the nodes reading node i's output
    weighted: list[bool]  # the call trains something (a kernel, a BN scale...)

    def size(self, i: int) -> int | None:
        shape = self.nodes[i].outputs[0].shape
        return shape[1] if len(shape) == 4 else None

    def spatial(self, i: int) -> tuple:
        return tuple(self.nodes[i].outputs[0].shape[1:3])


def _node_of(tensor):
    history = tensor._keras_history
    return history.operation._inbound_nodes[history.node_index]


def _topological(base: keras.Model) -> list:
    """Post-order from the outputs, without recursion (NASNetLarge is over a thousand calls deep).
    Walking from base.outputs sees the base's own calls only, not those later sub-models add."""
    order, state = [], {}
    stack = [(_node_of(t), False) for t in base.outputs]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            if state[id(node)] == 1:
                state[id(node)] = 2
                order.append(node)
        elif id(node) not in state:
            state[id(node)] = 1
            stack.append((node, True))
            stack.extend((p, False) for p in reversed(node.parent_nodes) if id(p) not in state)
    return order


def _weighted(operation) -> bool:
    return any(v.trainable for v in getattr(operation, "weights", []))


def graph(base: keras.Model) -> Graph:
    nodes = _topological(base)
    position = {id(n): i for i, n in enumerate(nodes)}
    parents = [[position[id(p)] for p in n.parent_nodes] for n in nodes]
    ancestors, consumers = [0] * len(nodes), [0] * len(nodes)
    for i, ps in enumerate(parents):
        bits = 1 << i
        for p in ps:
            bits |= ancestors[p]
            consumers[p] |= 1 << i
        ancestors[i] = bits
    return Graph(nodes, [n.operation.name for n in nodes], parents, ancestors, consumers,
                 [_weighted(n.operation) for n in nodes])


def crossing(g: Graph, i: int) -> list[int]:
    """The nodes whose outputs the layers after node i read, when all node i depends on is below:
    [i] for a cut point, more where a skip connection crosses."""
    below = g.ancestors[i]
    return [u for u in range(len(g.nodes)) if below >> u & 1 and g.consumers[u] & ~below]


def single_cuts(g: Graph) -> list[int]:
    """Nodes no edge jumps over: in any topological order a node is a cut point exactly when no
    earlier node feeds a later one. Neither the input nor the output (nothing below or above)."""
    cuts, reach = [], 0
    for i in range(len(g.nodes)):
        if reach <= i and 0 < i < len(g.nodes) - 1:
            cuts.append(i)
        reach = max(reach, g.consumers[i].bit_length() - 1)  # the last node reading node i
    return cuts


def pair_cuts(g: Graph) -> list[int]:
    """Cell outputs (merges) that, with one other tensor of the same spatial size, carry
    everything the layers after them read (NASNet's cell boundaries)."""
    found = []
    for i in range(1, len(g.nodes) - 1):
        if len(g.parents[i]) > 1:
            cross = crossing(g, i)
            if len(cross) == 2 and g.spatial(cross[0]) == g.spatial(cross[1]):
                found.append(i)
    return found


def _channels(tensor) -> int:
    return tensor.shape[-1]


def _widening(g: Graph, j: int) -> bool:
    op, node = g.nodes[j].operation, g.nodes[j]
    return (isinstance(op, keras.layers.Conv2D) and tuple(op.kernel_size) == (1, 1)
            and tuple(op.strides) == (1, 1) and len(g.parents[j]) == 1
            and _channels(node.input_tensors[0]) < _channels(node.outputs[0]))


def _settle(g: Graph, cands: list[int], cut: int, first: int) -> int:
    """The padding before a strided convolution goes with it. An inverted-residual block that
    downsamples (MobileNetV2/V3, EfficientNet) widens its input with a 1x1 convolution before the
    strided one and narrows it after: the cut goes before that widening, at the previous block's
    output (MobileNet v1's pointwise convolutions widen too, but end their block: no narrowing)."""
    if type(g.nodes[cut].operation).__name__ == "ZeroPadding2D" and g.parents[cut][0] in cands:
        cut = g.parents[cut][0]
    j = cut
    while len(g.parents[j]) == 1 and (not g.weighted[j] or isinstance(
            g.nodes[j].operation, keras.layers.BatchNormalization)):
        j = g.parents[j][0]
    if not (_widening(g, j) and g.parents[j][0] in cands):
        return cut
    wide = _channels(g.nodes[j].outputs[0])
    after = next((_channels(g.nodes[k].outputs[0]) for k in cands
                  if k > first and _channels(g.nodes[k].outputs[0]) != wide), wide)
    return g.parents[j][0] if after < wide else cut


def _stages(g: Graph, cands: list[int]) -> list[int]:
    """One cut per change of spatial size, from the top down: the last cut point before the first
    weighted layer after the level above ends. A level with no weights (VGG's last pool) is none,
    nor a cut with no weights below it (the stem's padding)."""
    cuts, smallest = [], g.size(cands[0]) if cands else None
    for prev, cur in zip(cands, cands[1:]):
        size = g.size(cur)
        if size is None:
            continue
        if smallest is not None and size < smallest and any(g.weighted[prev + 1:]):
            first = next(j for j in range(prev + 1, len(g.nodes)) if g.weighted[j])
            cut = _settle(g, cands, max(c for c in cands if c < first), first)
            if any(g.weighted[:cut + 1]) and cut not in cuts:
                cuts.append(cut)
        smallest = size if smallest is None else min(smallest, size)
    return cuts[::-1]


def stage_cuts(g: Graph) -> tuple[list[int], bool]:
    """The stage cuts from the top down, and whether they are pair cuts (NASNet)."""
    single = _stages(g, single_cuts(g))
    pairs = pair_cuts(g)
    paired = _stages(g, pairs) if pairs else []
    return (paired, True) if len(paired) > len(single) else (single, False)


def check_cut(g: Graph, name: str, label: str) -> tuple[int, list[int]]:
    """The node called `name` and the nodes the top reads when cut there; else one HarnessError
    saying why `name` is no cut."""
    where = [i for i, n in enumerate(g.names) if n == name]
    if not where:
        raise HarnessError(f"{label} has no layer {name!r}")
    if len(where) > 1:
        raise HarnessError(f"{name} is called at {len(where)} places in {label}, so it is no cut point")
    i = where[0]
    if i == 0:
        raise HarnessError(f"{name} is the input of {label}: nothing below it to freeze")
    if i == len(g.nodes) - 1:
        raise HarnessError(f"{name} is the output of {label}: nothing above it to train")
    cross = crossing(g, i)
    if cross == [i] or (stage_cuts(g)[1] and i in pair_cuts(g)):
        return i, cross
    others = [g.names[u] for u in cross if u != i]
    others = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
    raise HarnessError(f"{name} is no cut point of {label}: the layers above it also read {others} "
                       f"(a skip connection crosses it)")


def _channel_slices(features, widths: list[int]) -> list:
    """The pair cached side by side, taken apart with data-movement layers only (exact): the
    channels moved to the rows axis, cropped there, moved back."""
    total, start, parts = sum(widths), 0, []
    dtype = features.dtype
    for k, width in enumerate(widths):
        x = keras.layers.Permute((3, 1, 2), dtype=dtype, name=f"cut_part{k}_channels_first")(features)
        x = keras.layers.Cropping2D(((start, total - start - width), (0, 0)), data_format="channels_last",
                                    dtype=dtype, name=f"cut_part{k}_crop")(x)
        parts.append(keras.layers.Permute((2, 3, 1), dtype=dtype, name=f"cut_part{k}_channels_last")(x))
        start += width
    return parts


def _replay(g: Graph, below: int, known: dict):
    """Call every layer above the cut again, in order, on the tensors `known` maps the originals
    to: a flat model made of the base's own layers (same objects, same weights)."""
    for j, node in enumerate(g.nodes):
        if below >> j & 1:
            continue
        args, kwargs = node.arguments.fill_in(known)
        for original, new in zip(node.outputs, keras.tree.flatten(node.operation(*args, **kwargs))):
            known[id(original)] = new
    return known[id(g.nodes[-1].outputs[0])]


def split(base: keras.Model, name: str) -> tuple[keras.Model, keras.Model]:
    """(below, top) with top(below(x)) == base(x); the top takes one tensor, a pair cut's two
    side by side (below concatenates them)."""
    g = graph(base)
    i, cross = check_cut(g, name, base.name)
    tensors = [g.nodes[u].outputs[0] for u in cross]
    features = tensors[0] if len(tensors) == 1 else keras.layers.Concatenate(
        axis=-1, dtype=tensors[0].dtype, name="cut_pair")(tensors)
    below = keras.Model(base.input, features, name="below_cut")
    inputs = keras.Input(tuple(features.shape[1:]), dtype=features.dtype, name="cut_features")
    parts = [inputs] if len(tensors) == 1 else _channel_slices(inputs, [t.shape[-1] for t in tensors])
    known = {id(t): part for t, part in zip(tensors, parts)}
    top = keras.Model(inputs, _replay(g, g.ancestors[i], known), name="top_block")
    return below, top
