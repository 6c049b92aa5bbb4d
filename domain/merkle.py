"""The Merkle tree of RFC 9162 (Certificate Transparency v2) over the recorded history.

Pure: hashing, roots, inclusion and consistency proofs and their verification. Proofs are
produced from *complete subtrees* — the hash of leaves `[i·2^k, (i+1)·2^k)`, node `(k, i)` —
so a store that keeps those nodes answers any root or proof at any size with O(log n) reads:
`proof_nodes` names the nodes a proof needs, `inclusion_proof` / `consistency_proof` assemble
it from them (docs/audit.md, *The Merkle log*).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence

Node = tuple[int, int]  # (level, index): the complete subtree of leaves [index·2^level, …)
Range = tuple[int, int]  # leaves [start, end)

EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof asked for sizes or an index that do not exist in the tree."""


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two smaller than `size` (size ≥ 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def complete_nodes(start: int, end: int) -> list[Node]:
    """The complete subtrees, left to right, whose hashes give the hash of leaves [start, end).

    Valid for the ranges RFC 9162's recursion visits (start a multiple of a power of two at
    least end − start): the binary decomposition of the size."""
    nodes = []
    while start < end:
        level = (end - start).bit_length() - 1
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def range_hash(start: int, end: int, node: Callable[[Node], bytes]) -> bytes:
    """MTH of leaves [start, end) from complete-subtree hashes (right-to-left fold)."""
    if start == end:
        return EMPTY_ROOT
    hashes = [node(n) for n in complete_nodes(start, end)]
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The leaf ranges whose hashes form the audit path of leaf `index` in a tree of `size`."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of size {size}")
    out: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            start += k
    out.reverse()
    return out


def consistency_ranges(old: int, new: int) -> list[Range]:
    """The leaf ranges whose hashes form the consistency proof from size `old` to `new`."""
    if not 0 <= old <= new:
        raise ProofError(f"no consistency proof from size {old} to size {new}")
    if old in (0, new):
        return []
    out: list[Range] = []
    start, end, whole = 0, new, True
    while True:
        size, m = end - start, old - start
        if m == size:
            if not whole:
                out.append((start, end))
            break
        k = _split(size)
        if m <= k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            start += k
            whole = False
    out.reverse()
    return out


def proof_nodes(ranges: Iterable[Range]) -> set[Node]:
    """Every complete subtree needed to hash the given ranges (one batch read from a store)."""
    return {n for start, end in ranges for n in complete_nodes(start, end)}


def hashes_of(ranges: Sequence[Range], nodes: Mapping[Node, bytes]) -> list[bytes]:
    return [range_hash(start, end, nodes.__getitem__) for start, end in ranges]


def root_from_leaves(leaves: Sequence[bytes]) -> bytes:
    """MTH over leaf *hashes* (reference implementation: recursive, for tests and small trees)."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(root_from_leaves(leaves[:k]), root_from_leaves(leaves[k:]))


def verify_inclusion(
    index: int, size: int, leaf: bytes, path: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: whether `leaf` (a leaf hash) is leaf `index` of the tree `root`."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: whether the tree `new_root` of size `new` extends `old_root`."""
    if not 0 <= old <= new:
        return False
    if old == new:
        return not proof and old_root == new_root
    if old == 0:
        return not proof and old_root == EMPTY_ROOT
    path = list(proof)
    if old & (old - 1) == 0:
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root


class MemoryTree:
    """The tree held in memory: leaf hashes and every complete subtree (for tests, exports)."""

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        self.levels: list[list[bytes]] = [[]]
        for leaf in leaves:
            self.append(leaf)

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def append(self, leaf: bytes) -> None:
        """Append a leaf *hash*, completing every subtree it closes."""
        self.levels[0].append(leaf)
        level, index = 0, self.size - 1
        while index & 1:
            left, right = self.levels[level][index - 1], self.levels[level][index]
            level, index = level + 1, index >> 1
            if len(self.levels) == level:
                self.levels.append([])
            self.levels[level].append(node_hash(left, right))

    def node(self, node: Node) -> bytes:
        return self.levels[node[0]][node[1]]

    def root(self, size: int | None = None) -> bytes:
        return range_hash(0, self.size if size is None else size, self.node)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return [range_hash(s, e, self.node) for s, e in inclusion_ranges(index, size)]

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        return [range_hash(s, e, self.node) for s, e in consistency_ranges(old, new)]
