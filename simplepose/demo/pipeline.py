"""The demo pipeline: frames of a :class:`~simplepose.demo.sources.FrameSource` -> people ->
drawn output + JSON (:mod:`simplepose.demo.sinks`).

Sources (:func:`open_source`): an image file, a folder of images, a video file, or
``webcam:N``. Sinks: an annotated image, a folder of annotated images, or an annotated video
(H.264 ``.mp4``), plus optional per-frame JSON records
``{"frame": i, "timestamp": s, "people": [{"track_id", "keypoints": 3 K floats, "score",
"box_xyxy"}]}``
(``"image": name`` instead of the timestamp for images): streamed one per line to a ``.jsonl``
path, or one list written atomically at the end for other paths; and/or a window
(:class:`~simplepose.demo.sinks.Window`).

Videos and webcams are tracked by default (:mod:`simplepose.tracking`: stable ``track_id``,
One-Euro smoothing): the tracker runs in the render stage on each frame's people. With
``realtime=True`` the network runs on keyframes only, in its own thread, and optical flow
carries the people over the frames in between (:func:`~simplepose.tracking.track_frames`);
a webcam then always gives its newest frame and stale ones are dropped.

A stream that breaks mid-way -- a frame that cannot be decoded before the video's known end,
a frame of another size, a webcam that disconnects -- stops the run with an
:class:`~simplepose.errors.InputError` naming the frame; the video and JSON written up to
there are kept.

Videos and webcams run as a 4-stage pipeline of threads joined by bounded queues, so that
decoding, inference, grouping and drawing overlap and memory stays bounded::

    reader -> [q] -> preprocess + network (x workers) -> [q] -> assignment -> [q]
           -> render + write (caller)

Every stage but the network is one thread and every queue is FIFO; with several network
workers the assignment stage puts frames back in order, so output frames keep their input
order.
A failing stage sets a shared stop flag and its error is re-raised in the caller; every
blocking ``get``/``put`` polls that flag, and threads are joined with a timeout, so neither
an error nor Ctrl-C can hang the run. Image folders run frame by frame: a bad image is
logged, recorded in :attr:`DemoReport.bad` and skipped.

Library code: it logs and raises :class:`~simplepose.errors.InputError` with one clear line;
``demo.py`` turns those into an exit code.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..structures import Person
from .sinks import (
    Window,
    open_json_sink,
    open_video_writer,
    people_to_json,
    plan_outputs,
    render_frame,
    write_image,
)
from .sources import FrameSource, open_source

__all__ = [
    "STAGES",
    "DemoReport",
    "InferenceStages",
    "auto_workers",
    "build_predictor",
    "open_run",
    "run_demo",
]

LOG = logging.getLogger(__name__)

STAGES = ("read", "preprocess", "network", "assignment", "track", "render")
_SENTINEL = object()
_POLL_S = 0.1


@dataclass
class DemoReport:
    """What a run did.

    Attributes:
        frames: frames (images) processed.
        bad: ``"path: reason"`` of each image that could not be read (folders only).
        seconds: wall time from the first read to the last write.
        stage_ms: summed busy time per stage (:data:`STAGES`) in ms; with the video
            pipeline the stages overlap, so their sum exceeds the wall time.
        outputs: files written.
        people: people found over all frames.
        keyframes: frames the network ran on (all of them unless ``realtime``).
        dropped: frames a live source dropped to stay current (``realtime`` webcams).
        truncated: for a video that decoded fewer frames than its header announces, what was
            missing (``"... decoding stopped at frame 6"``); None otherwise.
    """

    frames: int = 0
    bad: list[str] = field(default_factory=list)
    seconds: float = 0.0
    stage_ms: dict[str, float] = field(default_factory=lambda: {s: 0.0 for s in STAGES})
    outputs: list[str] = field(default_factory=list)
    people: int = 0
    keyframes: int = 0
    dropped: int = 0
    truncated: str | None = None

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def per_frame_ms(self) -> dict[str, float]:
        n = max(self.frames, 1)
        return {k: v / n for k, v in self.stage_ms.items()}


def build_predictor(
    model: str | None = None,
    checkpoint: str | None = None,
    mode: str | None = None,
    detector: str | None = None,
    device: str | None = None,
    box_size: int | None = None,
    backend: str | None = None,
    shift_ratios=None,
):
    """Build the :class:`~simplepose.Predictor` the demo runs, checking the option combination.

    Args:
        model: a bundled model name (default ``openpose_mobilenet_thin`` when no checkpoint),
            or an ONNX file written by ``simplepose export`` (taken as ``checkpoint``).
        checkpoint: a simplepose checkpoint (bottom-up or top-down) or such an ONNX file.
        backend: ``"torch"`` / ``"onnxruntime"``; None: onnxruntime for ``.onnx``, else torch.
        mode: ``"bottomup"``/``"topdown"`` or None (whatever the checkpoint is).
        detector: top-down: a person detector ONNX (default: the bundled RTMDet-nano).
        box_size: bottom-up input height (ignored by top-down models).
        shift_ratios: top-down decoder shifts (``TopDownHeatmapCodec.shift_ratios``); None:
            the model's. A bottom-up model refuses them.
    """
    from ..checkpoint import read_metadata
    from ..inference.onnx_backend import read_onnx_metadata
    from ..predictor import Predictor

    if model and model.lower().endswith(".onnx") and not checkpoint:
        model, checkpoint = None, model
    if mode == "topdown" and not checkpoint:
        raise InputError(
            "--mode topdown needs --checkpoint (a top-down checkpoint: CPN, MSPN or RSN)"
        )
    if detector and not Path(detector).is_file():
        raise InputError(f"detector {detector} does not exist")
    if checkpoint and not Path(checkpoint).is_file():
        raise InputError(f"checkpoint {checkpoint} does not exist")
    if shift_ratios is not None and not checkpoint:
        raise InputError("--shift-ratios is a top-down decoding option: it needs a top-down "
                         "--checkpoint (CPN, MSPN or RSN)")
    if not checkpoint:
        options = {"box_size": box_size} if box_size else {}
        return Predictor.from_pretrained(
            model or "openpose_mobilenet_thin", device=device, backend=backend or "torch", **options
        )
    is_onnx = checkpoint.lower().endswith(".onnx")
    spec = (read_onnx_metadata if is_onnx else read_metadata)(checkpoint)["spec"]
    if mode and spec.paradigm != mode:
        raise InputError(
            f"checkpoint {checkpoint} is a {spec.paradigm} model ({spec.name}), not {mode}"
        )
    options = {"box_size": box_size} if box_size and spec.paradigm == "bottomup" else {}
    if shift_ratios is not None:
        if spec.paradigm != "topdown":
            raise InputError(f"--shift-ratios is a top-down decoding option; checkpoint "
                             f"{checkpoint} is a {spec.paradigm} model ({spec.name})")
        options["shift_ratios"] = tuple(shift_ratios)
    return Predictor.from_checkpoint(
        checkpoint, device=device, detector=detector or "bundled", backend=backend, **options
    )


def open_run(
    spec: str,
    max_frames: int | None = None,
    output: str | None = None,
    json_path: str | None = None,
    check: Callable[[FrameSource], None] | None = None,
    **predictor_options,
):
    """(source, predictor) of a run, every input and output checked before the model loads.

    Opens ``spec`` (:func:`~simplepose.demo.sources.open_source`, ``max_frames`` as there),
    runs ``check(source)`` (the caller's own conditions; it raises to refuse), checks
    ``output`` and ``json_path`` (:func:`~simplepose.demo.sinks.plan_outputs`; neither may be
    the input nor one of the model files of ``predictor_options``), then builds the
    predictor with :func:`build_predictor` (``predictor_options`` are its arguments). The
    source is closed when any of it fails.

    Raises:
        InputError: from any of those steps.
    """
    source = open_source(spec, max_frames=max_frames)
    try:
        if check is not None:
            check(source)
        # the model files the predictor will read are inputs too (--model: an ONNX file or a
        # bundled model's name)
        model = predictor_options.get("model")
        files = [predictor_options.get("checkpoint"), predictor_options.get("detector")]
        files += [model] if model and model.lower().endswith(".onnx") else []
        plan_outputs(source, output, json_path, inputs=files)
        predictor = build_predictor(**predictor_options)
    except BaseException:
        source.close()
        raise
    return source, predictor


class InferenceStages:
    """The predictor's steps as pipeline stages: :meth:`infer` (prepare + forward) and
    :meth:`assign` (decode), each returning its timings. Exactly what
    :meth:`~simplepose.Predictor.predict` runs, split in two.

    Args:
        predictor: a :class:`~simplepose.Predictor` (or anything with ``prepare``, ``forward``,
            ``decode``).
        channels_last: bottom-up: run the network in channels-last layout (CPU default;
            faster for the depthwise convs of OpenPose, same values to float rounding). It is
            a setting of the predictor's pipeline, so ``predictor.predict`` then runs the same.
        threads: ``torch.set_num_threads`` value (0 keeps torch's default).
    """

    def __init__(self, predictor, channels_last: bool | None = None, threads: int = 0):
        self.predictor = predictor
        if threads:
            import torch

            torch.set_num_threads(int(threads))
        pipeline = getattr(predictor, "pipeline", None)
        if (
            hasattr(pipeline, "set_channels_last")
            and getattr(predictor, "backend", "torch") == "torch"
        ):
            device = str(getattr(pipeline, "device", "cpu"))
            pipeline.set_channels_last(
                (device == "cpu") if channels_last is None else bool(channels_last)
            )

    def infer(self, frame: np.ndarray) -> tuple[object, float, float]:
        """(payload for :meth:`assign`, prepare ms, network ms)."""
        t0 = time.perf_counter()
        inputs = self.predictor.prepare(frame)
        t1 = time.perf_counter()
        outputs = self.predictor.forward(inputs)
        return (inputs, outputs), (t1 - t0) * 1e3, (time.perf_counter() - t1) * 1e3

    def assign(self, payload) -> tuple[list[Person], float]:
        """(people in original px, decode ms)."""
        t0 = time.perf_counter()
        people = self.predictor.decode(*payload)
        return people, (time.perf_counter() - t0) * 1e3


def run_demo(
    predictor,
    source: FrameSource,
    output: str | None = None,
    json_path: str | None = None,
    kpt_threshold: float = 0.2,
    draw_boxes: bool = False,
    hud: bool = True,
    max_frames: int | None = None,
    progress: bool = True,
    channels_last: bool | None = None,
    threads: int = 0,
    queue_size: int = 4,
    workers: int = 0,
    on_frame: Callable | None = None,
    show: bool = False,
    track: bool | None = None,
    realtime: bool = False,
    keyframe_interval: int | None = None,
    tracker_params=None,
) -> DemoReport:
    """Run ``predictor`` over ``source``, draw the people, write the outputs.

    Args:
        predictor: a :class:`~simplepose.Predictor`.
        source: from :func:`open_source` (closed here).
        output: image file / folder / video file for the drawn frames (None: no drawing).
        json_path: per-frame people JSON (:func:`~simplepose.demo.sinks.open_json_sink`): a
            ``.jsonl`` path gets one line per frame as it goes; any other path one list,
            written atomically when the run ends (also after an error, with the frames done so
            far).
        max_frames: stop after this many frames (the source's own ``limit`` applies too: the
            smaller wins); no frame beyond the limit is read.
        queue_size: bound of each inter-stage queue (video pipeline).
        workers: preprocess + network threads of the video pipeline. Several workers run
            frames concurrently (single-threaded each unless ``threads`` is given; can help
            on a CPU shared with other processes); the assignment stage restores the
            frame order. Frames in flight stay bounded by ``3 * queue_size + workers``.
            0 (auto): one worker (see :func:`auto_workers`).
        on_frame: optional ``callback(index, frame_bgr, people)`` after each frame is drawn.
        show: show each drawn frame in a window
            (see :func:`~simplepose.demo.sinks.display_problem`); a key press moves past an
            image, q or Esc stops the run.
        track: give people stable ids and smooth them (None: on for videos and webcams).
        realtime: videos/webcams: the network on keyframes in its own thread, optical flow in
            between (implies ``track``).
        keyframe_interval: ``realtime`` on a file: most frames carried per keyframe (None:
            :data:`~simplepose.tracking.realtime.KEYFRAME_INTERVAL`).
        tracker_params: :class:`~simplepose.tracking.TrackerParams` (default: the source's fps).

    Returns:
        :class:`DemoReport`.
    """
    out = plan_outputs(source, output, json_path)
    if realtime and not source.is_stream:
        raise InputError(
            f"--realtime needs a video or webcam input, not the {source.kind} {source.name}"
        )
    limits = [int(n) for n in (max_frames, source.limit) if n]
    max_frames = min(limits) if limits else None
    track = source.is_stream if track is None else bool(track)
    tracker = None
    if track or realtime:
        from ..tracking import TrackerParams, VideoTracker
        from ..tracking.realtime import KEYFRAME_INTERVAL, layout_of

        params = tracker_params or TrackerParams(fps=float(source.fps))
        tracker = VideoTracker(
            predictor.predict,
            params,
            keyframe_interval=keyframe_interval or KEYFRAME_INTERVAL,
            live=source.kind == "webcam",
            fps=float(source.fps),
            layout=layout_of(predictor),
        )
    window = Window(source.name) if show else None
    workers, threads = (
        auto_workers(predictor, workers, threads) if source.is_stream else (1, threads)
    )
    stages = InferenceStages(predictor, channels_last=channels_last, threads=threads)
    json_sink = open_json_sink(json_path) if json_path else None
    report = DemoReport()
    sink = _FrameSink(
        source,
        out,
        json_sink.write if json_sink is not None else None,
        report,
        kpt_threshold=kpt_threshold,
        draw_boxes=draw_boxes,
        hud=hud,
        on_frame=on_frame,
        window=window,
    )
    try:
        if realtime:
            _run_realtime(tracker, source, sink, max_frames, progress)
        elif source.is_stream:
            _run_stream(
                stages, source, sink, max_frames, progress, queue_size, max(1, int(workers)),
                tracker,
            )
        else:
            _run_images(stages, source, sink, progress)
    finally:
        source.close()
        if window is not None:
            window.close()
        if json_sink is not None:
            json_sink.close()
            report.outputs.append(str(json_path))
    return report


class _FrameSink:
    """Where every processed frame goes, the same for images, videos and webcams, tracked or
    real time: render (when an output or a window wants it), write (a video, or one image per
    input image), the JSON record, ``on_frame``, the progress bar, the window, and the frame,
    people and ``render`` time counters of the :class:`DemoReport`.

    Args:
        source: the run's :class:`FrameSource` (streams get a video writer, a frames-per-second
            HUD and non-blocking windows; images one written image each and a window that waits
            for a key).
        out: the planned output path (None: no drawn output).
        emit: ``callback(record)`` for the JSON records (None: no JSON).
        report: the run's report, completed by :meth:`close`.

    :attr:`times` holds the summed ms per stage (:data:`STAGES`), written into ``report`` by
    :meth:`close`; :attr:`start` is the run's start (``time.perf_counter`` s).
    """

    def __init__(
        self, source, out, emit, report, *, kpt_threshold, draw_boxes, hud, on_frame, window
    ):
        self.source, self.out, self.emit, self.report = source, out, emit, report
        self.draw = (kpt_threshold, draw_boxes, hud)
        self.on_frame, self.window = on_frame, window
        self.times = {s: 0.0 for s in STAGES}
        self.writer = None
        self.bar = None
        self.start = time.perf_counter()
        self._last: float | None = None
        self._fps: float | None = None

    def begin(self, total: int | None, desc: str, unit: str, progress: bool) -> None:
        """Start the clock and the progress bar (``total`` frames, None: unknown)."""
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=desc, unit=unit, disable=not progress)
        self.start = time.perf_counter()

    def skip(self) -> None:
        """An input that gave no frame (a bad image of a folder): advance the progress bar."""
        self.bar.update(1)

    def put(
        self,
        index: int,
        frame: np.ndarray,
        people: list[Person],
        timestamp: float | None = None,
        name: str | None = None,
    ) -> bool:
        """Send one frame (BGR, original px) and its people (original px) to every output.

        ``timestamp`` (s, streams) or ``name`` (the image file name) goes into the JSON record.
        Returns False when the window asks to stop.
        """
        t0 = time.perf_counter()
        stream = self.source.is_stream
        if stream:  # smoothed output rate for the HUD
            if self._last is not None:
                inst = 1.0 / max(t0 - self._last, 1e-6)
                self._fps = inst if self._fps is None else 0.9 * self._fps + 0.1 * inst
            self._last = t0
        canvas = None
        if self.out is not None or self.window is not None:
            canvas = render_frame(frame, people, *self.draw, self._fps)
        if self.out is not None:
            self._write(canvas, name)
        if self.on_frame:
            self.on_frame(index, frame, people)
        if self.emit is not None:
            if name is not None:
                record = {"frame": index, "image": name, "people": people_to_json(people)}
            else:
                record = _frame_record(index, timestamp, people)
            self.emit(record)
        self.times["render"] += (time.perf_counter() - t0) * 1e3
        self.report.frames += 1
        self.report.people += len(people)
        self.bar.update(1)
        return self.window is None or self.window.show(canvas, wait=not stream)

    def _write(self, canvas: np.ndarray, name: str | None) -> None:
        if not self.source.is_stream:
            target = self.out / name if self.source.kind == "folder" else self.out
            write_image(target, canvas)
            self.report.outputs.append(str(target))
            return
        if self.writer is None:
            h, w = canvas.shape[:2]
            self.writer = open_video_writer(self.out, self.source.fps, w, h)
        self.writer.write(canvas)

    def close(self) -> None:
        """Close the bar and the video, and fill in the report's wall time and stage times."""
        if self.bar is not None:
            self.bar.close()
        self.report.seconds = time.perf_counter() - self.start
        self.report.stage_ms = dict(self.times)
        if self.writer is not None:
            self.writer.close()
            self.report.outputs.append(str(self.out))


def _run_images(stages, source, sink: _FrameSink, progress):
    from ..data.coco import load_image

    report = sink.report
    sink.begin(len(source.paths), "demo", "img", progress and len(source.paths) >= 2)
    try:
        for index, path in enumerate(source.paths):
            t0 = time.perf_counter()
            try:
                frame = load_image(path)
            except InputError as exc:
                if source.kind != "folder":
                    raise
                LOG.info("skipping %s", exc)  # listed once, by whoever reads report.bad
                report.bad.append(str(exc))
                sink.skip()
                continue
            t1 = time.perf_counter()
            payload, pre_ms, net_ms = stages.infer(frame)
            people, assign_ms = stages.assign(payload)
            for k, v in zip(STAGES, ((t1 - t0) * 1e3, pre_ms, net_ms, assign_ms)):
                sink.times[k] += v
            report.keyframes += 1
            if not sink.put(index, frame, people, name=path.name):
                break
    finally:
        sink.close()
    if report.bad:
        LOG.info("%d of %d image(s) could not be read", len(report.bad), len(source.paths))


class _Stop(Exception):
    """Raised inside a stage when the shared stop flag is set."""


def _put(q: queue.Queue, item, stop: threading.Event) -> None:
    while True:
        if stop.is_set():
            raise _Stop
        try:
            q.put(item, timeout=_POLL_S)
            return
        except queue.Full:
            continue


def _get(q: queue.Queue, stop: threading.Event):
    while True:
        if stop.is_set():
            raise _Stop
        try:
            return q.get(timeout=_POLL_S)
        except queue.Empty:
            continue


def _read_frames(
    source: FrameSource, max_frames: int | None, times: dict, report: DemoReport
) -> Iterator[tuple[int, np.ndarray]]:
    """``(index, frame)`` of a video or webcam, in order; ``times["read"]`` gets the ms spent.

    A video that stops decoding before the frame count of its header (cut short, or a frame
    that cannot be decoded) ends the frames there and sets ``report.truncated``.

    Raises:
        InputError: no frame at all; a webcam that stops giving frames (disconnected).
    """
    cap = source.capture
    index = 0
    while not max_frames or index < max_frames:
        t0 = time.perf_counter()
        ok, frame = cap.read()
        times["read"] += (time.perf_counter() - t0) * 1e3
        if not ok or frame is None:
            if index == 0:
                raise InputError(
                    f"{source.kind} {source.name} yields no frames (corrupt or empty?)"
                )
            if source.kind == "webcam":
                raise InputError(
                    f"webcam {source.name} stopped giving frames after {index} (disconnected?)"
                )
            expected = source.header_frames
            if expected and index < min(expected, max_frames or expected):
                report.truncated = (
                    f"video {source.name} is truncated: its header announces "
                    f"{expected} frames but decoding stopped at frame {index}"
                )
                LOG.info("%s", report.truncated)  # reported once, by whoever reads the report
            return
        yield index, frame
        index += 1


def _frame_record(index: int, timestamp: float, people) -> dict:
    return {
        "frame": int(index),
        "timestamp": round(float(timestamp), 4),
        "people": people_to_json(people),
    }


def _run_realtime(tracker, source, sink: _FrameSink, max_frames, progress):
    """Keyframes in a worker thread + optical flow between them; draw and write in the caller."""
    from ..tracking import LatestFrameReader

    report = sink.report
    frames = (frame for _, frame in _read_frames(source, max_frames, sink.times, report))
    sink.begin(source.total, "demo (real time)", "frame", progress)
    try:
        for item in tracker.run(LatestFrameReader(frames) if source.kind == "webcam" else frames):
            if not sink.put(item.index, item.image, item.people, timestamp=item.timestamp):
                break
    finally:
        stats = tracker.stats
        sink.times["network"], sink.times["track"] = stats.network_s * 1e3, stats.flow_s * 1e3
        report.keyframes, report.dropped = stats.keyframes, stats.dropped
        sink.close()


def _run_stream(
    stages, source, sink: _FrameSink, max_frames, progress, queue_size, workers=1, tracker=None
):
    stop = threading.Event()
    errors: list[BaseException] = []
    q_read, q_maps, q_people = (queue.Queue(maxsize=max(1, queue_size)) for _ in range(3))
    times, report = sink.times, sink.report

    def stage(fn: Callable[[], Iterator], q_out: queue.Queue, name: str):
        def body():
            try:
                for item in fn():
                    _put(q_out, item, stop)
                _put(q_out, _SENTINEL, stop)
            except _Stop:
                pass
            except BaseException as exc:
                LOG.debug("stage %s failed", name, exc_info=True)
                errors.append(exc)
                stop.set()

        return threading.Thread(target=body, name=f"demo-{name}", daemon=True)

    broken: list[InputError] = []  # the stream broke mid-way: finish the frames in flight first

    def read():
        read_any = False
        try:
            for item in _read_frames(source, max_frames, times, report):
                read_any = True
                yield item
        except InputError as exc:
            if not read_any:
                raise
            broken.append(exc)

    lock = threading.Lock()

    def add_time(key: str, ms: float) -> None:
        with lock:
            times[key] += ms

    def infer():
        # with several workers the reader's single sentinel is passed on to the next worker
        while (item := _get(q_read, stop)) is not _SENTINEL:
            index, frame = item
            payload, pre_ms, net_ms = stages.infer(frame)
            add_time("preprocess", pre_ms)
            add_time("network", net_ms)
            yield index, frame, payload
        _put(q_read, _SENTINEL, stop)

    def assign():
        # workers may finish out of order: hold early frames until their predecessors arrive
        pending, expected, done = {}, 0, 0
        while done < workers:
            item = _get(q_maps, stop)
            if item is _SENTINEL:
                done += 1
                continue
            pending[item[0]] = item
            while expected in pending:
                index, frame, payload = pending.pop(expected)
                people, ms = stages.assign(payload)
                add_time("assignment", ms)
                yield index, frame, people
                expected += 1
        if pending:  # a gap means a frame was lost: never drop silently
            raise RuntimeError(f"demo pipeline lost frame {expected} (have {sorted(pending)[:5]})")

    threads = [stage(read, q_read, "read")]
    threads += [stage(infer, q_maps, f"infer{i}") for i in range(workers)]
    threads += [stage(assign, q_people, "assign")]
    sink.begin(source.total, "demo", "frame", progress)
    try:
        for t in threads:
            t.start()
        while True:
            try:
                item = q_people.get(timeout=_POLL_S)
            except queue.Empty:
                if errors:
                    raise errors[0]
                if not any(t.is_alive() for t in threads) and q_people.empty():
                    raise (
                        errors[0]
                        if errors
                        else RuntimeError("demo pipeline stopped without finishing")
                    )
                continue
            if item is _SENTINEL:
                if broken:
                    raise broken[0]
                break
            index, frame, people = item
            t0 = time.perf_counter()
            if tracker is not None:
                people = tracker.step(index, frame, people)
                times["track"] += (time.perf_counter() - t0) * 1e3
            stamp = t0 - sink.start if source.kind == "webcam" else index / source.fps
            report.keyframes += 1
            if not sink.put(index, frame, people, timestamp=stamp):
                break
        if errors:
            raise errors[0]
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=5.0)
            if t.is_alive():
                LOG.warning("thread %s did not stop within 5 s", t.name)
        sink.close()


def auto_workers(predictor, workers: int = 0, threads: int = 0) -> tuple[int, int]:
    """(network workers, torch threads) for the video pipeline; 0 workers means auto = 1.

    Measured with bench/demo.py on vtest.avi on a shared 2-core CPU: one worker with 2 torch
    threads was x1.19 / x1.13 faster than 2 single-threaded workers at input 320 / 432, and
    x0.82 at 256 under heavier load; so auto is one worker, and ``workers=2, threads=1`` is
    the option to try when other processes compete for the cores. Several workers always
    use one torch thread each unless ``threads`` says otherwise.
    """
    if not workers or int(workers) <= 1:
        return 1, int(threads)
    return int(workers), int(threads) or 1
