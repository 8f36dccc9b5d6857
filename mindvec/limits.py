"""Every limit and fixed constant of the format, in one place.

The spec's limits table (section 13) and the conformance cases are written against these
numbers; a reader in another language needs exactly these and no others. Constants that
belong to one algorithm only (Argon2id limits, the PAE prefix) stay with that algorithm.
"""

from __future__ import annotations

#: the version this implementation writes, and the highest minor it fully understands
FORMAT_VERSION = (1, 1)

# ---- container
MAGIC = b"\x89MVEC\r\n\n"
TRAILER_MAGIC = b"MVECEND\n"
PREAMBLE_SIZE = 32
TRAILER_SIZE = 16
ALIGN = 64
MAX_MANIFEST = 16 * 2**20
MIN_PAYLOAD = 16
MAX_PAYLOAD = 2**48
MAX_SIG_BLOCK = 65536
MAX_SIGNATURES = 16

# ---- canonical msgpack
#: deepest allowed nesting of maps and arrays (the top-level container is depth 1)
MAX_DEPTH = 32
#: maps and arrays together in N bytes of msgpack: at most max(MIN_CONTAINERS, N / BYTES_PER_CONTAINER)
MIN_CONTAINERS = 1024
BYTES_PER_CONTAINER = 16

# ---- safetensors payload
MAX_SAFETENSORS_HEADER = 100_000_000
MAX_TENSORS = 65536

# ---- Ed25519
SIGNATURE_ALG = "ed25519"
KEYID_LEN = 16
PUBLIC_KEY_LEN = 32
SIG_LEN = 64

# ---- files a user hands mindvec besides packages
MAX_KEY_FILE = 64 * 1024
MAX_ROTATION_FILE = 64 * 1024
MAX_TRUST_STORE = 16 * 2**20
MAX_STATE_FILE = 16 * 2**20
#: how long a writer waits for another process's lock on the trust store or state file
LOCK_TIMEOUT_S = 60.0
