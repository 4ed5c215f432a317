"""Enrolled customers: the pure rules that turn an export row into fingerprints
(:mod:`.enrolment`) and the service that enrols and offboards them (:mod:`.service`)."""
