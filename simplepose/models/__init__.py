"""Networks: IMHN, OpenPose mobilenet_thin, CPN, MSPN, RSN and their shared blocks.

Models are built from their :class:`~simplepose.spec.PoseModelSpec`
(``simplepose.spec.build_model(name, **overrides)`` or ``get_spec(name).build_model()``); the
spec's ``"module:function"`` builder imports only its own model file (and torch).
"""
