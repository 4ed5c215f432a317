"""Getting leak data in: one ingestion of a dump, a byte range or a connector page
(:mod:`.pipeline`), the enrolled index it matches against (:mod:`.matching`), its counters
(:mod:`.stats`), the keyed identities that make it resumable (:mod:`.input_keys`), large files
split across replicas (:mod:`.large_files`), scheduled connector runs (:mod:`.connector_runner`)
and HIBP e-mail range matches (:mod:`.email_range_matches`)."""
