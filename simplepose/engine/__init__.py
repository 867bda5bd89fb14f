"""Training engine: distributed helpers (:mod:`.dist`), LR schedules (:mod:`.schedule`), the
training loop (:mod:`.loop`), its builders (:mod:`.builders`) and its state (:mod:`.state`:
RNG, training checkpoint). Imported lazily by the scripts; nothing here runs at import."""
