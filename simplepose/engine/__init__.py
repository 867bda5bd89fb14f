"""Training engine: LR schedules (:mod:`.schedule`) and the training loop (:mod:`.trainer`).
The distributed helpers live in :mod:`simplepose.dist` (evaluation uses them too). Imported
lazily by the scripts; nothing here runs at import."""
