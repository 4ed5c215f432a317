"""The pure rules of the product, with no database, network or file I/O: identifier
normalisation (:mod:`.identity`), keyed fingerprints and k-anonymity prefixes
(:mod:`.fingerprints`), broker sites (:mod:`.broker_sites`), what to do about an exposure
(:mod:`.policy`) and how an exposure changes as it is seen again (:mod:`.lifecycle`). They
import nothing of ours but errors and the leak record types."""
