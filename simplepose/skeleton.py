"""Keypoint layouts: the single source of every skeleton constant in simplepose.

Two kinds of layout live here:

* :class:`KeypointLayout`: a benchmark's keypoint layout as data (names, flip pairs, OKS
  sigmas, drawing skeleton, and the *body plan* from which its bottom-up limb graph is
  derived). Registered instances: ``coco17`` (:data:`COCO17`, also OCHuman's layout),
  ``mpii16`` (:data:`MPII16`) and ``crowdpose14`` (:data:`CROWDPOSE14`); look them up with
  :func:`get_layout` or :func:`layout_from_keypoint_names`.
* :class:`BottomUpLayout`: the channel layout of a bottom-up network: ``SIMPLEPOSE18``
  (SimplePose's internal 18 points, COCO plus a synthetic neck, its 30 limbs in processing
  order, the 50-channel output and both test-time flip permutations, SPEC 3.1) and
  ``OPENPOSE18`` (the CMU-18 / 19-limb PAF layout of the bundled OpenPose mobilenet_thin
  model, shared/data/README.md). :func:`bottomup_layout` builds the SimplePose-style one of
  any :class:`KeypointLayout`.

The COCO-17 module constants (``COCO_KEYPOINTS``, ``COCO_FLIP_PAIRS``, ...) are the fields of
:data:`COCO17`.

The limb graph rule (:func:`derive_limbs`), SimplePose's construction of its 30 COCO limbs
(SPEC 3.1) written for any layout. A layout's *body plan* names a root (an existing keypoint,
or the midpoint of two keypoints: SimplePose's synthetic neck), its *centre* keypoints (head
and trunk points that hang directly from the root; the first is the head *anchor*) and four
limb *chains* (right arm, left arm, right leg, left leg; each proximal to distal). The limbs
are, in this processing order:

1. star: root -> each centre keypoint, in body-plan order;
2. head tree: the breadth-first tree, from the anchor, of the drawing-skeleton edges among the
   centre keypoints (neighbours visited in body-plan order), each edge directed away from the
   anchor; centre points not reached get no tree edge (the star holds them);
3. chains: for each chain, root -> chain[0], then chain[i] -> chain[i + 1];
4. redundant cross-links: (a) anchor -> right shoulder, anchor -> left shoulder; (b) for the
   right then the left side, shoulder -> same-side hip and hip -> opposite knee; (c) each
   head-tree leaf that lies on a side (its name starts with ``right``/``left``), in
   breadth-first order, -> the shoulder of its side; (d) right hip -> left hip.

Applied to COCO-17 with the neck as root, centre ``(nose, right_eye, left_eye, right_ear,
left_ear)`` and the limb chains, it gives SimplePose's 30 limbs exactly, in its order
(checked in ``tests/test_skeleton.py``): 9 star limbs, 4 face-tree limbs, 12 chain limbs and
the 9 cross-links 21-29. MPII-16 (root thorax) gets 23 limbs, CrowdPose-14 (root neck) 20.

Every index here is 0-based.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from .errors import InputError

__all__ = [
    "COCO17",
    "COCO_FLIP_INDEX",
    "COCO_FLIP_PAIRS",
    "COCO_KEYPOINTS",
    "COCO_SIGMAS",
    "COCO_SKELETON",
    "CROWDPOSE14",
    "DEFAULT_SIGMA",
    "LAYOUTS",
    "MPII16",
    "OPENPOSE18",
    "SIMPLEPOSE18",
    "BodyPlan",
    "BottomUpLayout",
    "KeypointLayout",
    "bottomup_layout",
    "derive_limbs",
    "flip_index_from_pairs",
    "get_layout",
    "layout_from_keypoint_names",
    "limb_flip_from",
    "similarity_sigmas",
    "similarity_sigmas_for",
]

# ----------------------------------------------------------------------------- COCO-17
COCO_KEYPOINTS: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
COCO_FLIP_PAIRS: tuple[tuple[int, int], ...] = (
    (1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16),
)  # fmt: skip
# The COCO category record's skeleton, converted from 1-based to 0-based.
COCO_SKELETON: tuple[tuple[int, int], ...] = tuple(
    (a - 1, b - 1)
    for a, b in (
        (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8),
        (7, 9), (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7),
    )
)
# Per-keypoint OKS sigmas of pycocotools (the evaluator uses var = (2 sigma)^2).
COCO_SIGMAS = np.array(
    [.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89],
    dtype=np.float64,
) / 10.0  # fmt: skip


def flip_index_from_pairs(num: int, pairs) -> tuple[int, ...]:
    """Permutation that swaps each (left, right) pair and fixes every other index."""
    index = list(range(num))
    for a, b in pairs:
        index[a], index[b] = b, a
    return tuple(index)


COCO_FLIP_INDEX: tuple[int, ...] = flip_index_from_pairs(17, COCO_FLIP_PAIRS)


# ------------------------------------------------------- what every layout shares
def _check_pairs(name: str, pairs, k: int) -> None:
    """Every ``(a, b)`` of ``pairs`` is two different indices below ``k``."""
    for a, b in pairs:
        if not (0 <= a < k and 0 <= b < k) or a == b:
            raise InputError(f"layout {name}: pair ({a}, {b}) is not two of {k} keypoints")


def _check_permutation(name: str, what: str, index, n: int) -> None:
    if sorted(index) != list(range(n)):
        raise InputError(f"layout {name}: {what} is not a permutation of {n} indices")


def limb_flip_from(limbs, keypoint_flip, name: str = "?") -> tuple[int, ...]:
    """The limb permutation implied by a keypoint flip: limb k maps to the limb whose
    endpoints are the mirrored endpoints of k (in either direction).

    Raises:
        InputError: a limb whose mirror image is not a limb of ``limbs``.
    """
    lookup: dict[tuple[int, int], int] = {}
    for k, (a, b) in enumerate(limbs):
        lookup[(a, b)] = k
        lookup.setdefault((b, a), k)
    mirrored = [(keypoint_flip[a], keypoint_flip[b]) for a, b in limbs]
    missing = [pair for pair in mirrored if pair not in lookup]
    if missing:
        raise InputError(f"layout {name}: the mirror images {missing[:3]} are not limbs")
    return tuple(lookup[pair] for pair in mirrored)


class _LimbGraph:
    """What both layout kinds offer: ``keypoints`` (names) and ``limbs`` (``(from, to)``
    index pairs into a graph of parts: ``keypoints`` for a :class:`BottomUpLayout`,
    ``graph_keypoints`` for a :class:`KeypointLayout`)."""

    keypoints: tuple[str, ...]
    limbs: tuple[tuple[int, int], ...]

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoints)

    @property
    def num_limbs(self) -> int:
        return len(self.limbs)

    @property
    def limbs_array(self) -> np.ndarray:
        """(L, 2) int32 limb endpoints."""
        return np.asarray(self.limbs, dtype=np.int32).reshape(-1, 2)


# ------------------------------------------------------------------- bottom-up layouts
@dataclass(frozen=True)
class BottomUpLayout(_LimbGraph):
    """An 18-part layout with limbs, as used by a bottom-up network and its grouping.

    Attributes:
        name: short identifier.
        keypoints: part names in channel order.
        limbs: ``(from_part, to_part)`` per limb, in grouping processing order.
        keypoint_flip: permutation of the part channels under a horizontal flip.
        limb_flip: permutation of the limb channels under a horizontal flip.
        to_coco: for each internal part, its COCO-17 index, or -1 when it has none (neck).
        limb_kind: ``"gaussian"`` (one scalar response map per limb, SimplePose) or
            ``"paf"`` (two vector-field channels per limb, OpenPose).
    """

    name: str
    keypoints: tuple[str, ...]
    limbs: tuple[tuple[int, int], ...]
    keypoint_flip: tuple[int, ...]
    limb_flip: tuple[int, ...]
    to_coco: tuple[int, ...]
    limb_kind: str
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        p = len(self.keypoints)
        _check_pairs(self.name, self.limbs, p)
        _check_permutation(self.name, "keypoint_flip", self.keypoint_flip, p)
        _check_permutation(self.name, "limb_flip", self.limb_flip, len(self.limbs))
        if len(self.to_coco) != p:
            raise InputError(f"layout {self.name}: {len(self.to_coco)} to_coco for {p} parts")
        if self.limb_kind not in ("gaussian", "paf"):
            raise InputError(
                f"layout {self.name}: limb_kind must be 'gaussian' or 'paf', got {self.limb_kind!r}"
            )

    @property
    def to_coco_array(self) -> np.ndarray:
        """(P,) int32 internal part -> COCO index (-1: dropped)."""
        return np.asarray(self.to_coco, dtype=np.int32)

    def derived_limb_flip(self) -> tuple[int, ...]:
        """Limb permutation implied by ``keypoint_flip`` (:func:`limb_flip_from`)."""
        return limb_flip_from(self.limbs, self.keypoint_flip, self.name)


_CMU18_NAMES = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist",
    "left_shoulder", "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle",
    "left_hip", "left_knee", "left_ankle", "right_eye", "left_eye", "right_ear", "left_ear",
)  # fmt: skip
_CMU18_FLIP = (0, 1, 5, 6, 7, 2, 3, 4, 11, 12, 13, 8, 9, 10, 15, 14, 17, 16)
# Internal part -> COCO-17 index; the neck (1) has no COCO counterpart.
_CMU18_TO_COCO = (0, -1, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)

SIMPLEPOSE18 = BottomUpLayout(
    name="simplepose18",
    keypoints=_CMU18_NAMES,
    limbs=(
        (1, 0), (1, 14), (1, 15), (1, 16), (1, 17), (0, 14), (0, 15), (14, 16), (15, 17),
        (1, 2), (2, 3), (3, 4), (1, 5), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
        (1, 11), (11, 12), (12, 13), (0, 2), (0, 5), (2, 8), (8, 12), (5, 11), (11, 9),
        (16, 2), (17, 5), (8, 11),
    ),
    keypoint_flip=_CMU18_FLIP,
    # SPEC 3.1, verbatim from the reference config (checked against derived_limb_flip in tests).
    limb_flip=(0, 2, 1, 4, 3, 6, 5, 8, 7, 12, 13, 14, 9, 10, 11, 18, 19, 20, 15, 16, 17,
               22, 21, 25, 26, 23, 24, 28, 27, 29),
    to_coco=_CMU18_TO_COCO,
    limb_kind="gaussian",
    extra={
        # 50-channel network output (SPEC 3.1).
        "limb_channels": (0, 30),
        "keypoint_channels": (30, 48),
        "person_mask_channel": 48,
        "keypoint_max_channel": 49,
        "num_channels": 50,
        # Test-time flip of the 20 keypoint+background channels (18 parts, mask, max).
        "keypoint_bkg_flip": _CMU18_FLIP + (18, 19),
    },
)

# OpenPose mobilenet_thin: 19 limbs and their PAF (x, y) channels counted from the first
# PAF channel (output channel 19), from shared/data/README.md.
_OPENPOSE_LIMBS = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11),
    (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (2, 16), (5, 17),
)  # fmt: skip
_OPENPOSE_PAF_XY = (
    (12, 13), (20, 21), (14, 15), (16, 17), (22, 23), (24, 25), (0, 1), (2, 3), (4, 5),
    (6, 7), (8, 9), (10, 11), (28, 29), (30, 31), (34, 35), (32, 33), (36, 37), (18, 19),
    (26, 27),
)  # fmt: skip

OPENPOSE18 = BottomUpLayout(
    name="openpose18",
    keypoints=_CMU18_NAMES,
    limbs=_OPENPOSE_LIMBS,
    keypoint_flip=_CMU18_FLIP,
    limb_flip=limb_flip_from(_OPENPOSE_LIMBS, _CMU18_FLIP, "openpose18"),
    to_coco=_CMU18_TO_COCO,
    limb_kind="paf",
    extra={
        "paf_xy": _OPENPOSE_PAF_XY,  # per limb: (x channel, y channel) within the 38 PAFs
        "num_heatmaps": 19,  # 18 parts + background
        "num_pafs": 38,
        "num_channels": 57,
    },
)


# ------------------------------------------------------------------ keypoint layouts
@dataclass(frozen=True)
class BodyPlan:
    """What :func:`derive_limbs` needs to build a layout's limb graph (module docstring).

    Attributes:
        root: the index of the root keypoint, or a pair ``(a, b)``: a synthetic root at the
            midpoint of keypoints a and b, labelled only when both are (SimplePose's neck).
        root_name: the synthetic root's name (ignored for an existing keypoint).
        centre: keypoints joined to the root directly (head and trunk points); ``centre[0]``
            is the head anchor. Right before left.
        chains: ``(right arm, left arm, right leg, left leg)``, each proximal to distal
            (``shoulder, elbow, wrist``; ``hip, knee, ankle``).
    """

    root: int | tuple[int, int]
    centre: tuple[int, ...]
    chains: tuple[tuple[int, ...], ...]
    root_name: str = "neck"

    @property
    def synthetic_root(self) -> bool:
        return not isinstance(self.root, int)


def _side(name: str) -> str | None:
    for side in ("right", "left"):
        if name.startswith(side):
            return side
    return None


def derive_limbs(
    keypoints, skeleton, plan: BodyPlan
) -> tuple[tuple[str, ...], tuple[tuple[int, int], ...]]:
    """The bottom-up limb graph of a layout, by SimplePose's rule (module docstring).

    Args:
        keypoints: the layout's K keypoint names.
        skeleton: the drawing skeleton, 0-based ``(a, b)`` index pairs.
        plan: the body plan.

    Returns:
        ``(graph keypoint names, limbs)``: the names are ``keypoints`` plus, for a synthetic
        root, ``plan.root_name`` at index K; limbs are ``(from, to)`` indices into those
        names, in processing order.

    Raises:
        InputError: a body plan that does not fit the keypoints (bad index, not four chains,
            a chain shorter than two, or a chain whose side disagrees with its names).
    """
    names = tuple(keypoints)
    k = len(names)

    def check(i, what):
        if not isinstance(i, int) or not 0 <= i < k:
            raise InputError(f"body plan: {what} {i!r} is not a keypoint index below {k}")

    if plan.synthetic_root:
        for i in plan.root:
            check(i, "root endpoint")
        root = k
        names = names + (plan.root_name,)
    else:
        check(plan.root, "root")
        root = plan.root
    for i in plan.centre:
        check(i, "centre keypoint")
    if not plan.centre:
        raise InputError("body plan: the centre needs at least the head anchor")
    if len(plan.chains) != 4 or any(len(c) < 2 for c in plan.chains):
        raise InputError(
            "body plan: chains must be (right arm, left arm, right leg, left leg), "
            f"each of at least 2 keypoints; got {plan.chains}"
        )
    for c, side in zip(plan.chains, ("right", "left", "right", "left")):
        for i in c:
            check(i, "chain keypoint")
            if _side(names[i]) != side:
                raise InputError(f"body plan: chain {c} holds {names[i]!r}, not a {side} point")

    limbs: list[tuple[int, int]] = [(root, c) for c in plan.centre]  # 1. star
    # 2. head tree over the skeleton edges among the centre keypoints
    order = {c: n for n, c in enumerate(plan.centre)}
    adjacent: dict[int, list[int]] = {c: [] for c in plan.centre}
    for a, b in skeleton:
        if a in order and b in order:
            adjacent[a].append(b)
            adjacent[b].append(a)
    anchor = plan.centre[0]
    seen, queue, bfs = {anchor}, deque([anchor]), []
    children: dict[int, int] = {c: 0 for c in plan.centre}
    while queue:
        node = queue.popleft()
        bfs.append(node)
        for nxt in sorted(adjacent[node], key=order.__getitem__):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
                limbs.append((node, nxt))
                children[node] += 1
    for c in plan.chains:  # 3. chains
        limbs.append((root, c[0]))
        limbs.extend(itertools.pairwise(c))
    r_arm, l_arm, r_leg, l_leg = plan.chains  # 4. cross-links
    limbs += [(anchor, r_arm[0]), (anchor, l_arm[0])]
    limbs += [
        (r_arm[0], r_leg[0]),
        (r_leg[0], l_leg[1]),
        (l_arm[0], l_leg[0]),
        (l_leg[0], r_leg[1]),
    ]
    shoulder = {"right": r_arm[0], "left": l_arm[0]}
    for node in bfs:
        side = _side(names[node])
        if node != anchor and children[node] == 0 and side is not None:
            limbs.append((node, shoulder[side]))
    limbs.append((r_leg[0], l_leg[0]))
    return names, tuple(limbs)


@dataclass(frozen=True)
class KeypointLayout(_LimbGraph):
    """A benchmark's keypoint layout, as data.

    Attributes:
        name: registry key (``coco17``, ``mpii16``, ``crowdpose14``).
        keypoints: the K keypoint names, in the dataset's order.
        flip_pairs: ``(left, right)``-style index pairs swapped by a horizontal flip.
        skeleton: 0-based index pairs for drawing.
        sigmas: (K,) per-keypoint OKS sigmas where the benchmark defines them (COCO,
            CrowdPose), else ``None`` (MPII is scored by PCKh).
        plan: the body plan of the limb graph.
        oks_area_from_box: ``None`` when the OKS scale is the annotation's ``area`` (COCO);
            a factor f when the benchmark uses ``f * box w * box h`` instead (CrowdPose 0.53).
        upper_body: the keypoints of the upper half for top-down half-body augmentation
            (COCO 0..12: the hips count as upper body, SPEC 5.1; MPII thorax, neck, head and
            arms; CrowdPose arms, head and neck).

    Derived (read-only): ``flip_index`` (K,) permutation; ``graph_keypoints`` (the names
    with the synthetic root appended, if any); ``limbs`` (``(from, to)`` indices into
    ``graph_keypoints``, :func:`derive_limbs`); ``graph_flip_index``.
    """

    name: str
    keypoints: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    skeleton: tuple[tuple[int, int], ...]
    sigmas: tuple[float, ...] | None
    plan: BodyPlan
    oks_area_from_box: float | None = None
    upper_body: tuple[int, ...] = ()
    flip_index: tuple[int, ...] = field(init=False)
    graph_keypoints: tuple[str, ...] = field(init=False)
    limbs: tuple[tuple[int, int], ...] = field(init=False)

    def __post_init__(self):
        k = len(self.keypoints)
        _check_pairs(self.name, tuple(self.flip_pairs) + tuple(self.skeleton), k)
        if self.sigmas is not None and len(self.sigmas) != k:
            raise InputError(f"layout {self.name}: {len(self.sigmas)} sigmas for {k} keypoints")
        object.__setattr__(self, "flip_index", flip_index_from_pairs(k, self.flip_pairs))
        if sorted(self.flip_index) != list(range(k)):
            raise InputError(f"layout {self.name}: flip pairs {self.flip_pairs} overlap")
        names, limbs = derive_limbs(self.keypoints, self.skeleton, self.plan)
        object.__setattr__(self, "graph_keypoints", names)
        object.__setattr__(self, "limbs", limbs)

    @property
    def sigmas_array(self) -> np.ndarray:
        """(K,) float64 OKS sigmas. Raises InputError for a layout without them."""
        if self.sigmas is None:
            raise InputError(f"layout {self.name} defines no OKS sigmas (its benchmark is not OKS)")
        return np.asarray(self.sigmas, dtype=np.float64)

    @property
    def graph_flip_index(self) -> tuple[int, ...]:
        """Flip permutation of ``graph_keypoints`` (a synthetic root maps to itself)."""
        return self.flip_index + ((len(self.keypoints),) if self.plan.synthetic_root else ())

    def index(self, name: str) -> int:
        """Index of a keypoint name. Raises InputError naming the layout."""
        try:
            return self.keypoints.index(name)
        except ValueError:
            raise InputError(f"layout {self.name} has no keypoint {name!r}") from None


def _pairs_by_name(names, left_right) -> tuple[tuple[int, int], ...]:
    return tuple((names.index(a), names.index(b)) for a, b in left_right)


COCO17 = KeypointLayout(
    name="coco17",
    keypoints=COCO_KEYPOINTS,
    flip_pairs=COCO_FLIP_PAIRS,
    skeleton=COCO_SKELETON,
    sigmas=tuple(float(s) for s in COCO_SIGMAS),
    plan=BodyPlan(root=(5, 6), centre=(0, 2, 1, 4, 3),
                  chains=((6, 8, 10), (5, 7, 9), (12, 14, 16), (11, 13, 15))),
    upper_body=tuple(range(13)),
)  # fmt: skip

# MPII Human Pose joint order (the converted JSON and gt_valid.mat agree).
_MPII_NAMES = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
    "pelvis", "thorax", "upper_neck", "head_top",
    "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
)  # fmt: skip
MPII16 = KeypointLayout(
    name="mpii16",
    keypoints=_MPII_NAMES,
    flip_pairs=((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)),
    skeleton=(
        (0, 1), (1, 2), (2, 6), (6, 3), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9),
        (7, 12), (12, 11), (11, 10), (7, 13), (13, 14), (14, 15),
    ),
    sigmas=None,
    plan=BodyPlan(root=7, centre=(8, 9, 6),
                  chains=((12, 11, 10), (13, 14, 15), (2, 1, 0), (3, 4, 5))),
    upper_body=(7, 8, 9, 10, 11, 12, 13, 14, 15),
)

# CrowdPose: 12 COCO body joints (left before right) then head (top) and neck. Sigmas of the
# CrowdPose evaluation: the COCO body sigmas, and the shoulder value for head and neck.
_CROWDPOSE_NAMES = (
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "head", "neck",
)  # fmt: skip
CROWDPOSE14 = KeypointLayout(
    name="crowdpose14",
    keypoints=_CROWDPOSE_NAMES,
    flip_pairs=((0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11)),
    skeleton=(
        (12, 13), (13, 0), (13, 1), (0, 2), (2, 4), (1, 3), (3, 5),
        (0, 6), (1, 7), (6, 7), (6, 8), (8, 10), (7, 9), (9, 11),
    ),
    sigmas=tuple(
        v / 10.0 for v in (.79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89, .79, .79)
    ),
    plan=BodyPlan(root=13, centre=(12,),
                  chains=((1, 3, 5), (0, 2, 4), (7, 9, 11), (6, 8, 10))),
    oks_area_from_box=0.53,
    upper_body=(0, 1, 2, 3, 4, 5, 12, 13),
)

LAYOUTS: dict[str, KeypointLayout] = {lay.name: lay for lay in (COCO17, MPII16, CROWDPOSE14)}


def get_layout(name) -> KeypointLayout:
    """The registered layout called ``name`` (a :class:`KeypointLayout` is returned as is).

    Raises:
        InputError: an unknown name (the message lists the known ones).
    """
    if isinstance(name, KeypointLayout):
        return name
    layout = LAYOUTS.get(name)
    if layout is None:
        raise InputError(f"unknown keypoint layout {name!r}; known: {sorted(LAYOUTS)}")
    return layout


def layout_from_keypoint_names(names) -> KeypointLayout | None:
    """The registered layout whose keypoint names are exactly ``names`` (in order), or None."""
    names = tuple(names)
    for layout in LAYOUTS.values():
        if layout.keypoints == names:
            return layout
    return None


#: OKS sigma of a keypoint that no OKS benchmark defines (the median COCO sigma)
DEFAULT_SIGMA = float(np.median(COCO_SIGMAS))


def similarity_sigmas(layout) -> np.ndarray:
    """(K,) OKS sigmas for comparing two poses of ``layout`` (tracking, OKS-NMS).

    The benchmark's sigmas where it defines them (COCO, CrowdPose). Otherwise (MPII, scored by
    PCKh) each keypoint takes the sigma of the keypoint of the same name in a layout that has
    sigmas, and :data:`DEFAULT_SIGMA` when none names it (MPII's head top, upper neck, thorax,
    pelvis). Benchmark scores never use these borrowed sigmas.
    """
    layout = get_layout(layout)
    if layout.sigmas is not None:
        return np.asarray(layout.sigmas, dtype=np.float64)
    by_name = {
        name: sigma
        for other in LAYOUTS.values()
        if other.sigmas is not None
        for name, sigma in zip(other.keypoints, other.sigmas)
    }
    return np.array([by_name.get(n, DEFAULT_SIGMA) for n in layout.keypoints], dtype=np.float64)


def similarity_sigmas_for(num_keypoints: int) -> np.ndarray:
    """(K,) :func:`similarity_sigmas` of the one registered layout with ``num_keypoints``
    keypoints, or :data:`DEFAULT_SIGMA` for each keypoint when no single layout has that many."""
    found = [lay for lay in LAYOUTS.values() if lay.num_keypoints == num_keypoints]
    if len(found) == 1:
        return similarity_sigmas(found[0])
    return np.full(num_keypoints, DEFAULT_SIGMA)


def bottomup_layout(layout) -> BottomUpLayout:
    """The SimplePose-style bottom-up channel layout of a keypoint layout.

    COCO-17 gives :data:`SIMPLEPOSE18` (the reference channel order: the same limbs, with the
    neck at index 1). Any other layout gets its ``graph_keypoints`` as parts, its derived
    limbs (one Gaussian response map each), the derived limb flip, and ``to_coco`` mapping
    each part to its index in the layout (-1 for a synthetic root). Channels: L limb maps,
    P keypoint maps, person mask, keypoint max (``L + P + 2``), as SPEC 3.1.
    """
    layout = get_layout(layout)
    if layout.name == COCO17.name:
        return SIMPLEPOSE18
    parts = layout.graph_keypoints
    p, n_limbs = len(parts), layout.num_limbs
    kflip = layout.graph_flip_index
    to_layout = tuple(i if i < layout.num_keypoints else -1 for i in range(p))
    name = f"simplepose_{layout.name}"
    return BottomUpLayout(
        name=name,
        keypoints=parts,
        limbs=layout.limbs,
        keypoint_flip=kflip,
        limb_flip=limb_flip_from(layout.limbs, kflip, name),
        to_coco=to_layout,
        limb_kind="gaussian",
        extra={
            "limb_channels": (0, n_limbs),
            "keypoint_channels": (n_limbs, n_limbs + p),
            "person_mask_channel": n_limbs + p,
            "keypoint_max_channel": n_limbs + p + 1,
            "num_channels": n_limbs + p + 2,
            "keypoint_bkg_flip": kflip + (p, p + 1),
            "layout": layout.name,
        },
    )
