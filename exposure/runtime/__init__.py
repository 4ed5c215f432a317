"""The long-running process: the daemon (:mod:`.daemon`), its jobs as data (:mod:`.jobs`), the
schedule (:mod:`.scheduler`, the only APScheduler import) and the demo (:mod:`.demo`)."""
