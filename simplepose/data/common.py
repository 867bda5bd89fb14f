"""Pieces shared by the training datasets: caches, the bad-image log, per-sample RNG."""

from __future__ import annotations

import logging
from collections import OrderedDict

import numpy as np

from .coco import CocoKeypoints, load_coco_keypoints

__all__ = ["LRUCache", "BadImageLog", "as_coco", "EpochSeeded"]

LOG = logging.getLogger(__name__)


class LRUCache:
    """A tiny least-recently-used cache (per process; each DataLoader worker has its own)."""

    def __init__(self, maxsize: int):
        self.maxsize = int(maxsize)
        self._data: OrderedDict = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key):
        if key in self._data:
            self._data.move_to_end(key)
            self.hits += 1
            return self._data[key]
        self.misses += 1
        return None

    def put(self, key, value) -> None:
        if self.maxsize <= 0:
            return
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


def as_coco(ann_file_or_coco) -> CocoKeypoints:
    """A loaded annotation file as is, or a path loaded by
    :func:`~simplepose.data.datasets.load_annotations` (COCO, OCHuman, CrowdPose, MPII)."""
    if isinstance(ann_file_or_coco, CocoKeypoints):
        return ann_file_or_coco
    from .datasets import load_annotations

    return load_annotations(ann_file_or_coco)


class BadImageLog:
    """Images that could not be read; shared logic of the bottom-up and top-down datasets."""

    def __init__(self):
        self.bad: dict[int, str] = {}
        self.events = 0

    def record(self, image_id: int, path, exc: Exception) -> None:
        self.events += 1
        if image_id not in self.bad:
            LOG.warning("skipping unreadable image %s (image id %d): %s", path, image_id, exc)
        self.bad[image_id] = str(path)



class EpochSeeded:
    """Per-sample randomness drawn from ``(seed, epoch, index)`` only, so a sample is the same
    in any process, worker or resumed run. Needs ``self.seed``, ``self.epoch``, ``self._bad``,
    and for :meth:`_readable` also ``self.coco``, ``self.images_dir`` and ``self._image``."""

    def _readable(self, key, entries: list, what: str):
        """Resolve a dataset key to ``(index, epoch, image)``: ``key`` is an index or an
        ``(epoch, index)`` pair (which carries the epoch into persistent workers). An
        unreadable image is logged and counted once, and the next entry is used instead, so a
        bad file never stops an epoch.

        Raises:
            IndexError: the index is out of range. InputError: no entry has a readable image.
        """
        from ..errors import InputError

        epoch, index = key if isinstance(key, tuple) else (None, key)
        n = len(entries)
        index = int(index)
        if not -n <= index < n:
            raise IndexError(f"{what[:-1]} index {index} out of range for {n} {what}")
        for attempt in range(n):
            i = (index % n + attempt) % n
            image_id = entries[i][0]
            if image_id in self._bad.bad:
                continue
            try:
                return i, epoch, self._image(image_id)
            except (InputError, OSError) as exc:
                self._bad.record(image_id, self.coco.image_path(image_id, self.images_dir), exc)
        raise InputError(f"no readable image among the {n} {what} of {self.coco.source}")

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation stream of ``epoch`` (call before each epoch)."""
        self.epoch = int(epoch)

    def rng(self, index: int, epoch: int | None = None) -> np.random.Generator:
        """The generator of sample ``index`` in ``epoch`` (default: the current epoch)."""
        e = self.epoch if epoch is None else int(epoch)
        return np.random.default_rng([self.seed, e, int(index)])

    @property
    def num_bad_images(self) -> int:
        return len(self._bad.bad)

    @property
    def bad_images(self) -> dict[int, str]:
        """``{image_id: path}`` of the images that failed to load (this process)."""
        return dict(self._bad.bad)
