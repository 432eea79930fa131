"""Compressed storage of one binary mask: cropped to its bounding box, bit-packed, then zlib'd."""

from __future__ import annotations

import base64
import binascii
import zlib
from dataclasses import dataclass, field

import numpy as np

from napari_hotspot.errors import AnnotationError

# Fast zlib level: the bit-packed crop is already small, higher levels buy little and cost time.
_ZLIB_LEVEL = 1


@dataclass(frozen=True, eq=False)
class CompressedMask:
    """An immutable (H, W) boolean mask kept as zlib(packbits(crop to bounding box)).

    ``bbox`` is ``(y0, x0, y1, x1)`` half-open in pixels, or ``None`` for an all-False mask.
    """

    shape: tuple[int, int]
    bbox: tuple[int, int, int, int] | None
    data: bytes = field(repr=False)
    area: int = 0

    @classmethod
    def from_array(cls, mask: np.ndarray) -> CompressedMask:
        """Compress a 2-D array; any non-zero value counts as foreground."""
        array = np.asarray(mask)
        if array.ndim != 2:
            raise AnnotationError(f"mask must be 2-D (H, W), got shape {array.shape}")
        if array.dtype == object or not (
            array.dtype == bool or np.issubdtype(array.dtype, np.number)
        ):
            raise AnnotationError(f"mask must be boolean or numeric, got dtype {array.dtype}")
        binary = array if array.dtype == bool else array != 0
        shape = (int(binary.shape[0]), int(binary.shape[1]))
        rows = np.flatnonzero(binary.any(axis=1))
        if rows.size == 0:
            return cls(shape=shape, bbox=None, data=b"", area=0)
        cols = np.flatnonzero(binary.any(axis=0))
        y0, y1 = int(rows[0]), int(rows[-1]) + 1
        x0, x1 = int(cols[0]), int(cols[-1]) + 1
        crop = binary[y0:y1, x0:x1]
        data = zlib.compress(np.packbits(crop, axis=None).tobytes(), _ZLIB_LEVEL)
        return cls(shape=shape, bbox=(y0, x0, y1, x1), data=data, area=int(crop.sum()))

    def crop(self) -> np.ndarray:
        """The boolean crop inside ``bbox`` (empty (0, 0) array for an empty mask)."""
        if self.bbox is None:
            return np.zeros((0, 0), dtype=bool)
        y0, x0, y1, x1 = self.bbox
        count = (y1 - y0) * (x1 - x0)
        bits = np.unpackbits(np.frombuffer(zlib.decompress(self.data), dtype=np.uint8), count=count)
        return bits.reshape(y1 - y0, x1 - x0).view(bool)

    def to_array(self) -> np.ndarray:
        """A fresh (H, W) boolean array."""
        out = np.zeros(self.shape, dtype=bool)
        if self.bbox is not None:
            y0, x0, y1, x1 = self.bbox
            out[y0:y1, x0:x1] = self.crop()
        return out

    def paint(self, target: np.ndarray, value: int) -> None:
        """Write ``value`` into ``target`` wherever this mask is set (only touches the bbox)."""
        if self.bbox is None:
            return
        y0, x0, y1, x1 = self.bbox
        target[y0:y1, x0:x1][self.crop()] = value

    @property
    def nbytes(self) -> int:
        """Bytes held by the compressed payload plus a fixed small overhead for the header."""
        return len(self.data) + 64

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompressedMask):
            return NotImplemented
        return self.shape == other.shape and self.bbox == other.bbox and self.data == other.data

    def __hash__(self) -> int:
        return hash((self.shape, self.bbox, self.data))

    def to_json(self) -> dict:
        """A JSON-safe record (shape, bbox, area, base64 of the payload) that ``from_json`` reads back."""
        return {"shape": list(self.shape), "bbox": None if self.bbox is None else list(self.bbox),
                "area": self.area, "data": base64.b64encode(self.data).decode("ascii")}

    @classmethod
    def from_json(cls, record, shape: tuple[int, int] | None = None) -> CompressedMask:
        """Read a ``to_json`` record back, for a mask of ``shape`` when given; a malformed or corrupt one
        (or one of another shape) raises AnnotationError, checked before anything large is made."""
        try:
            size = tuple(int(v) for v in record["shape"])
            bbox = None if record["bbox"] is None else tuple(int(v) for v in record["bbox"])
            if len(size) != 2 or min(size) <= 0:
                raise ValueError(f"shape {size} is no 2-D mask shape")
            if shape is not None and size != tuple(shape):
                raise ValueError(f"a {size[0]}x{size[1]} mask where {shape[0]}x{shape[1]} was expected")
            if bbox is not None and not (
                    len(bbox) == 4 and 0 <= bbox[0] < bbox[2] <= size[0] and 0 <= bbox[1] < bbox[3] <= size[1]):
                raise ValueError(f"box {bbox} does not fit a {size} mask")
            data = base64.b64decode(record["data"], validate=True)
            packed = cls(shape=size, bbox=bbox, data=data, area=int(record["area"]))
            if bbox is None:
                if data or packed.area:
                    raise ValueError("an empty mask with a payload")
                return packed
            count = (bbox[2] - bbox[0]) * (bbox[3] - bbox[1])
            expected = (count + 7) // 8
            inflater = zlib.decompressobj()
            bits = inflater.decompress(data, expected + 1)  # never more than the crop needs (+1 to see extra)
            if len(bits) != expected or inflater.unconsumed_tail or not inflater.eof:
                raise ValueError("the payload does not hold the box's pixels")
            if int(np.unpackbits(np.frombuffer(bits, np.uint8), count=count).sum()) != packed.area:
                raise ValueError("the payload does not match its area")
        except (KeyError, TypeError, ValueError, OverflowError, zlib.error, binascii.Error) as err:
            raise AnnotationError(f"malformed mask record: {err}") from None
        return packed
