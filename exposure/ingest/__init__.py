"""Getting leak data in: one ingestion of a dump, a byte range or a connector page, orchestrated
by :mod:`.pipeline` (reading, batching, checkpoints) with each batch matched, verified and
decided by :mod:`.evaluator` and written by :mod:`.writer`; the enrolled index it matches
against (:mod:`.matching`), its counters (:mod:`.stats`) and typed results (:mod:`.results`),
the keyed identities that make it resumable (:mod:`.input_keys`), large files split across
replicas (:mod:`.large_files`), scheduled connector runs (:mod:`.connector_runner`) and HIBP
e-mail range matches (:mod:`.email_range_matches`)."""
