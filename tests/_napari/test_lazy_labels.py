"""Tests of LazyLabels, the lazy frame-sparse (T, H, W) array behind the masks Labels layer: numpy
semantics for every indexing form napari and the controller use, writes, the frame cache, and a
napari Labels layer (no viewer) painting, filling and undoing on it without a dense volume."""

from __future__ import annotations

import numpy as np
import pytest

from napari_hotspot._napari.lazy_labels import LazyLabels
from napari_hotspot.annotations import AnnotationStore
from napari_hotspot.annotations.model import Provenance

T, H, W = 12, 30, 40


def make_store(big_id: bool = False) -> AnnotationStore:
    store = AnnotationStore(T, H, W)
    store.add_object(obj_id=1)
    store.add_object(obj_id=300 if big_id else 2)
    for t in range(0, T, 2):
        m1 = np.zeros((H, W), bool)
        m1[2 + t: 10 + t, 3:12] = True
        store.set_frame(1, t, mask=m1, provenance=Provenance.PROPAGATED)
        m2 = np.zeros((H, W), bool)
        m2[15:25, 20 + t: 30 + t] = True
        store.set_frame(300 if big_id else 2, t, mask=m2, provenance=Provenance.PROPAGATED)
    return store


def dense(store: AnnotationStore) -> np.ndarray:
    return np.stack([store.label_frame(t) for t in range(T)])


class NoDense(LazyLabels):
    """Fails on any whole-volume materialisation."""

    def __array__(self, dtype=None, copy=None):
        raise AssertionError("dense materialisation")


@pytest.fixture
def pair():
    store = make_store()
    return NoDense(store, cache_frames=4), dense(store)


def test_shape_dtype_and_array_protocol():
    store = make_store()
    lazy = LazyLabels(store)
    assert lazy.shape == (T, H, W) and lazy.ndim == 3 and len(lazy) == T and lazy.size == T * H * W
    assert lazy.dtype == np.uint8
    assert LazyLabels(make_store(big_id=True)).dtype == np.uint16
    np.testing.assert_array_equal(np.asarray(lazy), dense(store))  # rare full-volume need still works
    assert np.asarray(lazy, dtype=np.int32).dtype == np.int32
    with pytest.raises(TypeError):
        LazyLabels(store, dtype=float)


@pytest.mark.parametrize("key", [
    3, -1, np.int64(5), (4,), (4, slice(None), slice(None)), (4, ...), (..., 5), (slice(2, 7), 10),
    slice(None), slice(1, 9, 3), slice(6, 6), (slice(4, 5), slice(5, 12), slice(3, 15)),  # paint's box
    (2, 6, 5), (np.int64(2), np.int64(6), np.int64(5)),  # one pixel (fill's seed)
    (slice(2, 3), slice(None), slice(None)), (2, slice(None), slice(None)),  # fill's plane
    (np.array([0, 2, 2, 11]), np.array([3, 5, 20, 1]), np.array([4, 5, 25, 0])),  # data_setitem indices
    (np.array([[2, 4], [6, 8]]), np.array([[5, 6], [7, 8]]), 4), (4, np.array([3, 5]), slice(None)),
    (4, slice(None), np.array([3, 5])), (np.array([1, 4, 4]),), np.arange(T) % 3 == 0, [0, 3],
    (np.array([], dtype=np.intp), np.array([], dtype=np.intp), np.array([], dtype=np.intp)),
])
def test_getitem_matches_numpy(pair, key):
    lazy, ref = pair
    got, want = lazy[key], ref[key]
    assert np.shape(got) == np.shape(want) and np.asarray(got).dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_getitem_returns_copies(pair):
    lazy, ref = pair
    frame = lazy[2]
    frame[...] = 9
    np.testing.assert_array_equal(lazy[2], ref[2])
    box = lazy[2:3, 0:5, 0:5]
    box[...] = 9
    np.testing.assert_array_equal(lazy[2], ref[2])


def test_out_of_bounds_raises(pair):
    lazy, _ = pair
    for key in (T, -T - 1, (0, H, 0), (np.array([T]), np.array([0]), np.array([0]))):
        with pytest.raises(IndexError):
            lazy[key]


@pytest.mark.parametrize("key, value", [
    (3, 7),
    (3, np.full((H, W), 5, np.uint8)),
    ((3, slice(None), slice(None)), 6),
    ((slice(4, 5), slice(5, 12), slice(3, 15)), np.arange(7 * 12).reshape(1, 7, 12) % 5),
    ((np.array([0, 2, 2, 11]), np.array([3, 5, 20, 1]), np.array([4, 5, 25, 0])), np.array([1, 2, 3, 4])),
    ((np.array([0, 2, 2, 11]), np.array([3, 5, 20, 1]), np.array([4, 5, 25, 0])), 9),
    ((slice(1, 9, 3), slice(0, 4)), 8),
    (np.arange(T) % 4 == 1, 3),
    ((5, np.array([1, 2]), slice(None)), np.arange(W) % 7),
])
def test_setitem_matches_numpy_and_survives_eviction(pair, key, value):
    lazy, ref = pair
    lazy[key] = value
    ref[key] = value
    for t in range(T):  # reads every frame: evicts the written ones (cache of 4) into compressed copies
        np.testing.assert_array_equal(lazy[t], ref[t])
    assert len(lazy.cached_frames) <= 4
    np.testing.assert_array_equal(lazy[key], ref[key])


def test_whole_frame_write_casts_like_numpy(pair):
    lazy, ref = pair
    lazy[1] = np.full((H, W), 258, np.uint16)
    ref[1] = np.full((H, W), 258, np.uint16)
    np.testing.assert_array_equal(lazy[1], ref[1])
    with pytest.raises(ValueError):
        lazy[1] = np.zeros((H + 1, W), np.uint8)


def test_untouched_frames_take_no_memory():
    store = make_store()
    lazy = LazyLabels(store, cache_frames=3)
    assert lazy.cache_nbytes == 0 and lazy.cached_frames == []
    lazy[5]
    lazy[6, 1, 2]
    assert lazy.cached_frames == [5, 6] and lazy.cache_nbytes == 2 * H * W
    for t in range(T):
        lazy[t]
    assert len(lazy.cached_frames) == 3 and lazy.cache_nbytes == 3 * H * W  # an LRU, not the volume
    lazy[0, 0:4, 0:4] = 9  # written, then pushed out: kept compressed
    for t in range(1, T):
        lazy[t]
    assert lazy.written_frames == [0] and 0 not in lazy.cached_frames
    assert lazy.cache_nbytes < 4 * H * W
    assert (lazy[0, 0:4, 0:4] == 9).all()


def test_reload_drops_edits_and_reads_the_store_again():
    store = make_store()
    lazy = LazyLabels(store)
    lazy[2] = 0
    assert lazy.written_frames == [2] and not lazy[2].any()
    lazy.reload([2])
    np.testing.assert_array_equal(lazy[2], store.label_frame(2))
    store.remove_object(2)  # the store changed: clean frames follow it once reloaded
    lazy.reload()
    np.testing.assert_array_equal(lazy[2], store.label_frame(2))
    assert lazy.written_frames == [] and lazy.cached_frames == [2]


def test_napari_labels_layer_paints_fills_and_undoes_without_a_dense_volume():
    from napari.layers import Labels

    store = make_store()
    lazy = NoDense(store, cache_frames=2)
    ref = dense(store)
    layer = Labels(lazy)
    assert layer.data is lazy and layer.ndim == 3 and layer.dtype == np.uint8
    layer.refresh()
    layer.brush_size = 5
    layer.paint((4, 20, 8), 3)
    ref4 = ref[4].copy()
    yy, xx = np.mgrid[:H, :W]
    assert lazy[4, 20, 8] == 3 and (lazy[4] == 3).sum() > 5
    assert ((lazy[4] != ref4) <= ((yy - 20) ** 2 + (xx - 8) ** 2 <= 9)).all()  # only under the brush
    layer.fill((6, 5, 5), 2)  # the background of frame 6 becomes label 2 (contiguous)
    assert lazy[6, 5, 5] == 2 and lazy[6, 0, 0] == 2 and lazy[6, 10, 6] == 1  # object 1 kept
    layer.data_setitem((np.array([8, 8]), np.array([0, 1]), np.array([0, 1])), 4)
    assert lazy[8, 0, 0] == 4 and lazy[8, 1, 1] == 4
    for t in range(T):  # push the edited frames out of the 2-frame cache
        lazy[t]
    layer.undo()
    layer.undo()
    np.testing.assert_array_equal(lazy[8], ref[8])
    np.testing.assert_array_equal(lazy[6], ref[6])
    layer.undo()
    np.testing.assert_array_equal(lazy[4], ref4)
    layer.redo()
    assert lazy[4, 20, 8] == 3


def test_whole_volume_comparison_is_numpy_like():
    store = make_store()
    lazy = LazyLabels(store)
    np.testing.assert_array_equal(lazy == 2, dense(store) == 2)
    np.testing.assert_array_equal(lazy != 0, dense(store) != 0)
    assert {lazy: 1}[lazy] == 1  # still hashable (by identity)
