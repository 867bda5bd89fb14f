"""Inference pipelines: images (and, top-down, person boxes) in, lists of
:class:`~simplepose.structures.Person` in original-image px out.

* :mod:`simplepose.inference.bottomup`: IMHN / OpenPose whole-image pipeline.
* :mod:`simplepose.inference.topdown`: CPN / MSPN / RSN per-box pipeline.
"""
