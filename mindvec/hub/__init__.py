"""Publish packages on the Hugging Face Hub and pull them, verifying before use.

``push`` (:mod:`mindvec.hub.upload`) uploads a signed package, its signers' public keys and a
model card rendered only from the signed manifest (:mod:`mindvec.hub.card`). ``pull``
(:mod:`mindvec.hub.download`, where the fixed order of its checks is written down) downloads
pinned to a commit into mindvec's own staging folder, checks the transfer, verifies with
:func:`mindvec.verification.enforce`, and only then moves the file into mindvec's cache
(:mod:`mindvec.hub.cache`). ``huggingface_hub`` is imported only when a Hub call is made
(extra ``mindvec[hub]``).
"""

from mindvec.hub.cache import cache_root
from mindvec.hub.card import render_model_card
from mindvec.hub.client import HubUnreachable
from mindvec.hub.download import PullResult, pull, pull_verified
from mindvec.hub.names import HfUrl, is_hf_url, parse_hf_url
from mindvec.hub.upload import push

__all__ = [
    "HfUrl",
    "HubUnreachable",
    "PullResult",
    "cache_root",
    "is_hf_url",
    "parse_hf_url",
    "pull",
    "pull_verified",
    "push",
    "render_model_card",
]
