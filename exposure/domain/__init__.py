"""The pure rules of the product, with no database, network or file I/O: identifier
normalisation (:mod:`.identity`), keyed fingerprints and k-anonymity prefixes
(:mod:`.fingerprints`), broker sites (:mod:`.broker_sites`) and what to do about an exposure
(:mod:`.policy`). They import nothing of ours but errors and the leak record types."""
