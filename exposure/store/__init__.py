"""Persistence: the only package that speaks SQL. Named queries per concern, the schema
(:mod:`.models`), the engine (:mod:`.db`) and the lease every work queue claims with
(:mod:`.leases`)."""
