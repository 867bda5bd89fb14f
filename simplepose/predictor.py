"""``simplepose.Predictor``: image(s) -> people in original px, for every model simplepose knows.

    from simplepose import Predictor
    predictor = Predictor.from_pretrained("openpose_mobilenet_thin")      # bundled weights
    predictor = Predictor.from_checkpoint("runs/imhn/model_final.safetensors")
    predictor = Predictor.from_checkpoint("rsn18.safetensors", detector="rtmdet_nano.onnx")
    predictor = Predictor.from_onnx("op.onnx")          # written by `simplepose export`
    predictor = Predictor.from_pretrained("openpose_mobilenet_thin", backend="onnxruntime")
    people = predictor.predict(cv2.imread("photo.jpg"))                   # list[Person]

Backends: ``"torch"`` runs the PyTorch module; ``"onnxruntime"`` runs an exported ONNX graph
(:class:`~simplepose.inference.onnx_backend.OnnxRuntimeModel`) in place of the module's forward,
with the same prepare / decode, so the people are the same to float rounding. A ``.onnx`` path
selects it; with a model name or a checkpoint it exports the network into a temporary file
first (tens of seconds on a CPU; export once with ``simplepose export`` to avoid that).

Bottom-up checkpoints (IMHN, OpenPose) run :class:`~simplepose.inference.bottomup.BottomUpPipeline`;
top-down ones (CPN, MSPN, RSN) run :class:`~simplepose.inference.topdown.TopDownPipeline` on boxes
from a person detector, or on boxes passed to :meth:`Predictor.predict`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import numpy as np

from .errors import InputError
from .geometry import xywh_to_xyxy, xyxy_to_xywh
from .spec import PoseModelSpec, available_specs, get_spec
from .structures import Person

__all__ = ["BACKENDS", "Predictor", "select_device"]

#: inference backends of :class:`Predictor`
BACKENDS = ("torch", "onnxruntime")

LOG = logging.getLogger(__name__)


def select_device(device: str | None = None) -> str:
    """``None``/``"auto"``: CUDA when available, else CPU; otherwise the given device."""
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {device!r} requested but CUDA is not available")
    return str(device)


class Predictor:
    """Runs a pose model on BGR uint8 images.

    Every caller (``predict``, the demo's threaded stages, evaluation) drives the same three
    steps: :meth:`prepare` (top-down: boxes from the detector when none are given, then crops;
    bottom-up: resize + pad), :meth:`forward` (the network) and :meth:`decode` (people in
    original px).

    Attributes:
        pipeline: the bottom-up or top-down pipeline doing the work.
        spec: the model's :class:`~simplepose.spec.PoseModelSpec`.
        mode: ``"bottomup"`` or ``"topdown"`` (the spec's paradigm).
        model_name: the spec's name.
        detector: top-down person detector used when :meth:`prepare` gets no boxes, or None.
        backend: ``"torch"`` or ``"onnxruntime"`` (:data:`BACKENDS`).
    """

    def __init__(self, pipeline, spec: PoseModelSpec, detector=None, backend: str = "torch"):
        self.pipeline = pipeline
        self.spec = spec
        self.mode = spec.paradigm
        self.model_name = spec.name
        self.detector = detector
        self.backend = _check_backend(backend)

    # ------------------------------------------------------------------ builders
    @classmethod
    def from_pretrained(cls, name: str = "openpose_mobilenet_thin", device: str | None = None,
                        backend: str = "torch", **options) -> Predictor:
        """A model with weights bundled in the package (no download); ``backend`` as in
        :meth:`from_checkpoint`."""
        _check_backend(backend)
        spec = get_spec(name)
        if not spec.pretrained:
            bundled = [n for n in available_specs() if get_spec(n).pretrained]
            raise InputError(f"no bundled weights for {name!r}; bundled: {', '.join(bundled)}")
        model = spec.build_model(pretrained=True)
        if backend == "onnxruntime":
            return cls._exported(model, spec, {}, device=device, **options)
        return cls.from_spec(spec, model, device=device, **options)

    @classmethod
    def from_checkpoint(cls, path, device: str | None = None, detector="bundled",
                        backend: str | None = None, **options) -> Predictor:
        """A simplepose checkpoint (``.safetensors`` written by training or conversion), or an
        ONNX file written by ``simplepose export`` (see :meth:`from_onnx`).

        Args:
            path: the checkpoint; the model spec it carries rebuilds the model, codec and
                pipeline exactly as training used them.
            device: ``"cpu"``, ``"cuda[:i]"`` or ``None`` (auto).
            backend: ``"torch"`` or ``"onnxruntime"``; ``None``: onnxruntime for a ``.onnx``
                file, torch otherwise. ``"onnxruntime"`` with a checkpoint exports it first.
            detector: top-down only, used when :meth:`predict` gets no boxes: ``"bundled"`` (the
                RTMDet-nano person detector shipped with simplepose), a
                :class:`~simplepose.detect.PersonDetector`, the path of an ONNX file of that
                format, or ``None`` (boxes must then be passed to :meth:`predict`).
            options: pipeline options (bottom-up: ``box_size``, ``scales``, ``flip``, ``params``;
                top-down: ``flip``, ``batch_size``, ``shift_ratios``, ...); an option of the
                other paradigm is an :class:`InputError`.
        """
        from pathlib import Path

        from .checkpoint import extra_metadata, load_model

        is_onnx = Path(path).suffix.lower() == ".onnx"
        backend = _check_backend(backend or ("onnxruntime" if is_onnx else "torch"))
        if is_onnx:
            if backend != "onnxruntime":
                raise InputError(f"{path} is an ONNX file: it runs with backend 'onnxruntime', "
                                 f"not {backend!r}")
            return cls.from_onnx(path, device=device, detector=detector, **options)
        model, meta = load_model(path, map_location="cpu")
        if backend == "onnxruntime":
            return cls._exported(model, meta["spec"], extra_metadata(meta), device=device,
                                 detector=detector, **options)
        return cls.from_spec(meta["spec"], model, device=device, detector=detector, **options)

    @classmethod
    def from_onnx(cls, path, device: str | None = None, detector="bundled", providers=None,
                  threads: int | None = None, **options) -> Predictor:
        """An ONNX file written by ``simplepose export``, run by ONNX Runtime.

        The file's metadata holds the model spec (codec, normalisation, layout, defaults), so
        nothing else is needed. ``device``: ``None``/``"cpu"`` (CPU provider) or ``"cuda[:i]"``
        (needs ONNX Runtime's CUDA provider); ``providers`` overrides the choice;
        ``threads``: intra-op threads; ``detector`` and ``options`` as in
        :meth:`from_checkpoint`.

        Raises:
            CheckpointError: missing or unloadable file, or no / invalid simplepose metadata
                (the message names the missing keys).
        """
        from .inference.onnx_backend import OnnxRuntimeModel

        model = OnnxRuntimeModel(
            path, providers=providers or _ort_providers(device), threads=threads
        )
        # the pipeline's tensors stay on the CPU; ONNX Runtime moves them to its provider
        predictor = cls.from_spec(model.spec, model, device="cpu", detector=detector, **options)
        predictor.backend = "onnxruntime"
        return predictor

    @classmethod
    def _exported(cls, model, spec: PoseModelSpec, checkpoint_meta: dict, device=None,
                  detector="bundled", **options) -> Predictor:
        """Export ``model`` into a temporary ONNX file and load it with :meth:`from_onnx`."""
        import tempfile
        from pathlib import Path

        from .export import export_onnx

        LOG.info("exporting %s to ONNX for the onnxruntime backend", spec.name)
        with tempfile.TemporaryDirectory(prefix="simplepose_onnx_") as tmp:
            path = Path(tmp) / f"{spec.name}.onnx"
            export_onnx(model, spec, path, checkpoint_meta=checkpoint_meta, check=False)
            return cls.from_onnx(path, device=device, detector=detector, **options)

    @classmethod
    def from_spec(cls, spec: PoseModelSpec, model, device: str | None = None, detector="bundled",
                  **options) -> Predictor:
        """The predictor of ``model`` described by ``spec`` (``detector`` as in
        :meth:`from_checkpoint`, top-down only)."""
        device = select_device(device)
        if spec.paradigm == "topdown":
            from .inference.topdown import TopDownPipeline

            _check_options(spec, TopDownPipeline, options, extra=("codec",))
            pipeline = TopDownPipeline.from_spec(model, spec, device=device, **options)
            return cls(pipeline, spec, detector=_as_detector(detector))
        from .inference.bottomup import BottomUpPipeline

        _check_options(spec, BottomUpPipeline, options)
        return cls(BottomUpPipeline(model, spec, device=device, **options), spec)

    # ---------------------------------------------------------------------- steps
    def prepare(
        self,
        image: np.ndarray,
        boxes: np.ndarray | None = None,
        box_scores: np.ndarray | None = None,
        *,
        boxes_xyxy: np.ndarray | None = None,
    ):
        """Step 1: the pipeline inputs of one BGR uint8 (H, W, 3) image.

        Top-down models use ``boxes_xyxy`` (N, 4) x1, y1, x2, y2 in original px (with
        ``box_scores`` (N,), default 1), or the detector's when no boxes are given. Bottom-up
        models ignore boxes. ``boxes`` (N, 4) x, y, w, h is the deprecated spelling of earlier
        releases.
        """
        if boxes is not None:
            warnings.warn(
                "Predictor boxes=(x, y, w, h) is deprecated: pass boxes_xyxy=(x1, y1, x2, y2)",
                DeprecationWarning,
                stacklevel=3,
            )
            if boxes_xyxy is not None:
                raise InputError("pass boxes_xyxy or the deprecated boxes, not both")
            boxes_xyxy = xywh_to_xyxy(boxes)
        if self.mode == "bottomup":
            return self.pipeline.prepare(image)
        if boxes_xyxy is None:
            if self.detector is None:
                raise InputError(
                    "a top-down model needs boxes or a detector "
                    "(Predictor.from_checkpoint(..., detector='bundled'))"
                )
            boxes_xyxy, box_scores = self.detector.detect(image)
        xywh = xyxy_to_xywh(boxes_xyxy)  # the pipeline takes COCO boxes
        if box_scores is None:
            box_scores = np.ones(len(xywh))
        return self.pipeline.prepare(image, xywh, np.asarray(box_scores, float))

    def forward(self, inputs):
        """Step 2: the network on the inputs of :meth:`prepare`."""
        return self.pipeline.forward(inputs)

    def decode(self, inputs, outputs) -> list[Person]:
        """Step 3: people in original px from the inputs and the network outputs."""
        return self.pipeline.decode(inputs, outputs)

    # ---------------------------------------------------------------------- API
    def predict(
        self,
        image: np.ndarray,
        boxes: np.ndarray | None = None,
        box_scores: np.ndarray | None = None,
        *,
        boxes_xyxy: np.ndarray | None = None,
    ) -> list[Person]:
        """People in one BGR uint8 (H, W, 3) image, in original px (boxes: see :meth:`prepare`)."""
        inputs = self.prepare(image, boxes, box_scores, boxes_xyxy=boxes_xyxy)
        if self.mode == "topdown" and inputs.num_boxes == 0:
            return []
        return self.decode(inputs, self.forward(inputs))

    def track(self, frames, **options):
        """Tracked people over consecutive frames: a generator of
        :class:`~simplepose.tracking.TrackedFrame` (``index``, ``image``, ``people`` with stable
        ``track_id``, smoothed). ``options`` go to :func:`~simplepose.tracking.track_frames`
        (``realtime=True``: network on keyframes + optical flow; ``live=True`` for cameras).

            for out in predictor.track(frames):
                for person in out.people:
                    print(out.index, person.track_id, person.keypoints)
        """
        from .tracking import track_frames

        return track_frames(self, frames, **options)

    def predict_batch(self, images: Sequence[np.ndarray]) -> list[list[Person]]:
        """People in each image (bottom-up: same-size images share one forward pass)."""
        if self.mode == "bottomup":
            return self.pipeline.predict_batch(list(images))
        return [self.predict(im) for im in images]


def _check_options(spec: PoseModelSpec, pipeline_cls, options: dict, extra=()) -> None:
    """Refuse pipeline options the model's paradigm does not have (e.g. the top-down decoder's
    ``shift_ratios`` for a bottom-up model) with one line naming them, not a TypeError."""
    import inspect

    accepted = set(inspect.signature(pipeline_cls).parameters) - {"model", "spec", "device"}
    accepted |= set(extra)
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise InputError(
            f"{spec.name} is a {spec.paradigm} model: option(s) {', '.join(unknown)} do not apply "
            f"(its options: {', '.join(sorted(accepted))})"
        )


def _check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    return backend


def _ort_providers(device: str | None) -> list[str]:
    """ONNX Runtime providers for ``device`` (None / cpu: CPU; cuda: CUDA, then CPU)."""
    if device in (None, "auto", "cpu") or str(device).startswith("cpu"):
        return ["CPUExecutionProvider"]
    import onnxruntime

    if (
        str(device).startswith("cuda")
        and "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    ):
        index = str(device).partition(":")[2] or "0"
        return [("CUDAExecutionProvider", {"device_id": int(index)}), "CPUExecutionProvider"]
    raise InputError(f"device {device!r}: ONNX Runtime here has providers "
                     f"{onnxruntime.get_available_providers()} (install onnxruntime-gpu for CUDA)")


def _as_detector(detector):
    if detector is None or hasattr(detector, "detect"):
        return detector
    from .detect import PersonDetector

    return PersonDetector.bundled() if detector == "bundled" else PersonDetector(detector)
