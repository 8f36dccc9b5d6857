"""The conformance cases, one module per topic, in the order ``generate`` writes them.

Each case states its topics (mapped to spec requirement ids in
:mod:`conformance_tests.requirements`), a description, flags, the bytes and the expected
result. Hostile cases start from bytes the project's writer produced and change as little as
possible, so that each case has exactly one defect unless its flags say ``MultipleDefects``.
"""

from __future__ import annotations

from collections.abc import Callable

from conformance_tests.casebook import (
    acceptable,
    coverage,
    defects,
    format_1_1,
    large,
    limits,
    msgpack_profile,
    order,
    payload,
    semantics,
    signature_block,
    structure,
    trust_store,
    valid,
    verification,
    versions,
)
from conformance_tests.suite import Suite

GROUPS: list[Callable[[Suite], None]] = [
    valid.valid_content,
    limits.limits,
    versions.versions_and_extensions,
    structure.structure,
    msgpack_profile.canonical_msgpack,
    payload.payload,
    signature_block.signature_block,
    semantics.semantics,
    coverage.unexercised,
    verification.verification,
    trust_store.trust_grammar,
    trust_store.state_file,
    trust_store.signers,
    defects.multiple_defects,
    order.order_within_steps,
    order.isolated_rules,
    order.header_order,
    large.large_files,
    large.huge_files,
    order.more_orders,
    acceptable.acceptable,
    format_1_1.format_1_1,
]
