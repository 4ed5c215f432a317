"""Leaked passwords against the broker's enrolled password hashes.

:mod:`.schemes` recognises, parses, bounds and refuses enrolled hashes (argon2, bcrypt, scrypt,
PBKDF2, sha-crypt); :mod:`.verifier` verifies on every core and gives the password status;
:mod:`.hash_shapes` tells a leaked value that is itself a hash; :mod:`.tweaks` generates the
likely small changes of a leaked password.
"""
