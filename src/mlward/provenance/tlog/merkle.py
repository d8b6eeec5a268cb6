"""RFC 9162 (Certificate Transparency v2) Merkle tree hashing, proofs and proof checks.

Pure functions. Proof generation works on *ranges*: every hash a proof needs is the Merkle Tree
Hash of a range of leaves [start, end) that splits into complete, aligned subtrees, so a store
that keeps the hash of every complete subtree answers any proof with O(log n) lookups.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

# (level, index): the complete subtree of 2**level leaves starting at leaf index * 2**level.
NodeKey = tuple[int, int]


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1), where RFC 9162 splits a tree."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaves: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes, the RFC's recursive definition (used to cross-check the stores)."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(root_of(leaves[:k]), root_of(leaves[k:]))


def range_nodes(start: int, end: int) -> list[NodeKey]:
    """The complete subtrees that make up the range, left to right (largest first)."""
    keys: list[NodeKey] = []
    n = end - start
    while n > 0:
        size = 1 << (n.bit_length() - 1) if n & (n - 1) else n
        level = size.bit_length() - 1
        keys.append((level, start >> level))
        start += size
        n -= size
    return keys


def range_hash(start: int, end: int, node: Callable[[NodeKey], bytes]) -> bytes:
    """MTH(D[start:end]) from complete-subtree hashes: folded right to left, as RFC 9162 does."""
    if end <= start:
        return EMPTY_ROOT
    parts = [node(key) for key in range_nodes(start, end)]
    acc = parts[-1]
    for part in reversed(parts[:-1]):
        acc = node_hash(part, acc)
    return acc


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The ranges whose hashes form PATH(index, D[0:size]), in proof order (leaf side first)."""
    if not 0 <= index < size:
        raise ValueError(f"index {index} is outside a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    start, n, m = 0, size, index
    while n > 1:
        k = _split(n)
        if m < k:
            ranges.append((start + k, start + n))
            n = k
        else:
            ranges.append((start, start + k))
            start, n, m = start + k, n - k, m - k
    ranges.reverse()
    return ranges


def consistency_ranges(old: int, new: int) -> list[tuple[int, int]]:
    """The ranges whose hashes form PROOF(old, D[0:new]) of RFC 9162 §2.1.4.1, in proof order."""
    if not 0 < old <= new:
        raise ValueError(f"no consistency proof from size {old} to size {new}")
    ranges: list[tuple[int, int]] = []
    start, n, m, complete = 0, new, old, True
    while m != n:
        k = _split(n)
        if m <= k:
            ranges.append((start + k, start + n))
            n = k
        else:
            ranges.append((start, start + k))
            start, n, m, complete = start + k, n - k, m - k, False
    if not complete:
        ranges.append((start, start + n))
    ranges.reverse()
    return ranges


def nodes_for(ranges: Iterable[tuple[int, int]]) -> set[NodeKey]:
    keys: set[NodeKey] = set()
    for start, end in ranges:
        keys.update(range_nodes(start, end))
    return keys


def build_proof(
    ranges: Sequence[tuple[int, int]], fetch: Callable[[set[NodeKey]], Mapping[NodeKey, bytes]]
) -> list[bytes]:
    """Hashes for the ranges; ``fetch`` is called once, so a database answers in one query."""
    nodes = fetch(nodes_for(ranges))
    return [range_hash(start, end, nodes.__getitem__) for start, end in ranges]


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2, step by step."""
    if index >= size or index < 0:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2, step by step (equal sizes need an empty proof and equal roots)."""
    if old == new:
        return not proof and old_root == new_root
    if old <= 0 or old > new:
        return False
    path = list(proof)
    if old & (old - 1) == 0:  # old is a power of two: its root is the first node
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0
