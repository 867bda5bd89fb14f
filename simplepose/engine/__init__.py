"""Training engine: LR schedules (:mod:`.schedule`), the training loop (:mod:`.loop`), its
builders (:mod:`.builders`) and its state (:mod:`.state`: RNG, training checkpoint). The
distributed helpers live in :mod:`simplepose.dist` (evaluation uses them too). Imported lazily by
the scripts; nothing here runs at import."""
