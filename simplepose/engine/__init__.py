"""Training engine: distributed helpers (:mod:`.dist`), LR schedules (:mod:`.schedule`) and the
training loop (:mod:`.trainer`). Imported lazily by the scripts; nothing here runs at import."""
