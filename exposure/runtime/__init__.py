"""The long-running process: the daemon (:mod:`.daemon`), its jobs as data (:mod:`.jobs`), the
schedule (:mod:`.scheduler`, the only APScheduler import), the ingest's worker threads and their
owner's scope (:mod:`.threads`) and the demo (:mod:`.demo`)."""
