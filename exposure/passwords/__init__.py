"""Leaked passwords against the broker's enrolled password hashes: recognising hashes and
verifying on every core (:mod:`.verifier`)."""
