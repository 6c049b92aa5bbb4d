"""The RFC 9162 Merkle module against the published RFC 6962 / Certificate Transparency vectors."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slatrail.domain.merkle import (
    EMPTY_ROOT,
    MemoryTree,
    ProofError,
    consistency_ranges,
    hashes_of,
    inclusion_ranges,
    leaf_hash,
    proof_nodes,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)
from tests.hypothesis_profiles import examples

# The leaves and expected values of the CT test data (certificate-transparency-go, merkle).
LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]

TREE = MemoryTree(leaf_hash(leaf) for leaf in LEAVES)


def test_the_empty_tree_hashes_to_the_sha256_of_nothing() -> None:
    assert EMPTY_ROOT.hex() == hashlib.sha256(b"").hexdigest()
    assert MemoryTree().root() == EMPTY_ROOT


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_the_ct_vectors(size: int) -> None:
    assert TREE.root(size).hex() == ROOTS[size - 1]
    assert root_from_leaves([leaf_hash(x) for x in LEAVES[:size]]).hex() == ROOTS[size - 1]


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_inclusion_proofs_match_the_ct_vectors(index: int, size: int, path: list[str]) -> None:
    proof = TREE.inclusion_proof(index, size)
    assert [p.hex() for p in proof] == path
    root = bytes.fromhex(ROOTS[size - 1])
    assert verify_inclusion(index, size, leaf_hash(LEAVES[index]), proof, root)


@pytest.mark.parametrize(("old", "new", "path"), CONSISTENCY)
def test_consistency_proofs_match_the_ct_vectors(old: int, new: int, path: list[str]) -> None:
    proof = TREE.consistency_proof(old, new)
    assert [p.hex() for p in proof] == path
    old_root, new_root = bytes.fromhex(ROOTS[old - 1]), bytes.fromhex(ROOTS[new - 1])
    assert verify_consistency(old, new, old_root, new_root, proof)


def _flip(value: bytes, bit: int) -> bytes:
    out = bytearray(value)
    out[bit // 8 % len(out)] ^= 1 << (bit % 8)
    return bytes(out)


def test_a_flipped_bit_anywhere_fails_an_inclusion_proof() -> None:
    index, size = 5, 8
    proof, root, leaf = TREE.inclusion_proof(5, 8), TREE.root(8), TREE.levels[0][5]
    for n in range(len(proof)):
        bad = list(proof)
        bad[n] = _flip(bad[n], 3)
        assert not verify_inclusion(index, size, leaf, bad, root)
    assert not verify_inclusion(index, size, _flip(leaf, 0), proof, root)
    assert not verify_inclusion(index, size, leaf, proof, _flip(root, 255))
    assert not verify_inclusion(4, size, leaf, proof, root)
    assert not verify_inclusion(index, 6, leaf, proof, root)  # (7 has the same shape: the
    # size is bound by the signed checkpoint, not by the path)
    assert not verify_inclusion(index, size, leaf, [*proof, proof[0]], root)
    assert not verify_inclusion(index, size, leaf, proof[:-1], root)
    assert not verify_inclusion(8, 8, leaf, proof, root)


def test_a_flipped_bit_anywhere_fails_a_consistency_proof() -> None:
    proof, old_root, new_root = TREE.consistency_proof(6, 8), TREE.root(6), TREE.root(8)
    for n in range(len(proof)):
        bad = list(proof)
        bad[n] = _flip(bad[n], 7)
        assert not verify_consistency(6, 8, old_root, new_root, bad)
    assert not verify_consistency(6, 8, _flip(old_root, 1), new_root, proof)
    assert not verify_consistency(6, 8, old_root, _flip(new_root, 1), proof)
    assert not verify_consistency(5, 8, old_root, new_root, proof)
    assert not verify_consistency(6, 6, old_root, new_root, proof)
    assert not verify_consistency(8, 6, new_root, old_root, proof)
    assert not verify_consistency(6, 8, old_root, new_root, proof[:-1])


def test_a_proof_outside_the_tree_is_refused() -> None:
    with pytest.raises(ProofError):
        inclusion_ranges(8, 8)
    with pytest.raises(ProofError):
        consistency_ranges(9, 8)


@settings(max_examples=examples(200), deadline=None)
@given(
    leaves=st.lists(st.binary(max_size=4), min_size=1, max_size=70),
    data=st.data(),
)
def test_proofs_from_complete_subtrees_verify_against_the_reference_root(
    leaves: list[bytes], data: st.DataObject
) -> None:
    hashes = [leaf_hash(x) for x in leaves]
    tree = MemoryTree(hashes)
    size = data.draw(st.integers(1, len(hashes)))
    old = data.draw(st.integers(1, size))
    index = data.draw(st.integers(0, size - 1))
    root = root_from_leaves(hashes[:size])
    assert tree.root(size) == root
    ranges = inclusion_ranges(index, size)
    nodes = {n: tree.node(n) for n in proof_nodes(ranges)}
    path = hashes_of(ranges, nodes)
    assert verify_inclusion(index, size, hashes[index], path, root)
    old_root = root_from_leaves(hashes[:old])
    assert verify_consistency(old, size, old_root, root, tree.consistency_proof(old, size))
    if old < size:
        changed = list(hashes)
        changed[old - 1] = leaf_hash(b"changed" + leaves[old - 1])
        other = root_from_leaves(changed[:old])
        assert not verify_consistency(old, size, other, root, tree.consistency_proof(old, size))
