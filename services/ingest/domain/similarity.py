"""Text identity for dedup and leakage: normalised-text keys (exact) and MinHash signatures (near).

Near duplicates are texts whose character 4-gram sets have a Jaccard similarity of at least a
threshold. MinHash estimates it: each of PERMS hash functions keeps the minimum over a text's
4-grams, and two texts agree on a given minimum with probability equal to their Jaccard similarity.
LSH groups texts that agree on all ROWS_PER_BAND minima of any of BANDS bands. With 16 bands of 4,
a pair at J=0.7 becomes a candidate with probability 1-(1-0.7^4)^16 ≈ 0.99, at J=0.3 only ≈ 0.12;
candidates are then confirmed on the full 64-value signature.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence

import numpy as np

PERMS = 64
BANDS = 16
ROWS_PER_BAND = PERMS // BANDS
_SEED = 0x7475_6E65  # fixed: signatures must be comparable across runs and versions
_rng = np.random.default_rng(_SEED)
# Multiply-shift hashing of 32-bit grams: ((a*x + b) mod 2^64) >> 32, with odd a.
_A = (_rng.integers(1, 2**63, size=PERMS, dtype=np.uint64) * np.uint64(2)) + np.uint64(1)
_B = _rng.integers(0, 2**63, size=PERMS, dtype=np.uint64)
_PUNCT = re.compile(r"[^\w\s<>]+")
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Text as compared for duplicates: NFKC, case-folded, punctuation dropped, spaces collapsed."""
    t = unicodedata.normalize("NFKC", text).casefold()
    return _SPACE.sub(" ", _PUNCT.sub(" ", t)).strip()


def keys(texts: Sequence[str]) -> np.ndarray:
    """The exact-duplicate keys of many texts (uint64)."""
    return _keys([normalise(t).encode("utf-8") for t in texts])


def _keys(normalised: Sequence[bytes]) -> np.ndarray:
    digests = (int.from_bytes(hashlib.blake2b(b, digest_size=8).digest(), "big") for b in normalised)
    return np.fromiter(digests, dtype=np.uint64, count=len(normalised))


def keys_and_signatures(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Keys and MinHash signatures of many texts, normalising each text once."""
    normalised = [normalise(t).encode("utf-8") for t in texts]
    return _keys(normalised), _signatures(normalised)


def _grams(normalised: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """All 4-byte grams of the normalised texts, packed as uint32, and where each text's grams start."""
    encoded = [b.ljust(4) for b in normalised]
    sizes = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=len(encoded))
    buf = np.frombuffer(b"".join(encoded), dtype=np.uint8).astype(np.uint32)
    packed = (buf[:-3] << 24) | (buf[1:-2] << 16) | (buf[2:-1] << 8) | buf[3:]
    # Grams crossing from one text into the next are dropped: keep the first size-3 of each text.
    offsets = np.cumsum(sizes) - sizes
    owner = np.repeat(np.arange(len(encoded)), sizes)[: len(packed)]
    keep = np.arange(len(packed)) - offsets[owner] < sizes[owner] - 3
    starts = np.cumsum(sizes - 3) - (sizes - 3)
    return packed[keep], starts


def signatures(texts: Sequence[str]) -> np.ndarray:
    """MinHash signatures, shape (len(texts), PERMS), uint32."""
    return _signatures([normalise(t).encode("utf-8") for t in texts])


def _signatures(normalised: Sequence[bytes]) -> np.ndarray:
    if not normalised:
        return np.zeros((0, PERMS), dtype=np.uint32)
    grams, starts = _grams(normalised)
    x = grams.astype(np.uint64)
    out = np.empty((len(normalised), PERMS), dtype=np.uint32)
    with np.errstate(over="ignore"):
        for p in range(PERMS):
            h = ((x * _A[p] + _B[p]) >> np.uint64(32)).astype(np.uint32)
            out[:, p] = np.minimum.reduceat(h, starts)
    return out


def band_hashes(sigs: np.ndarray, band: int) -> np.ndarray:
    """One LSH band of each signature folded into a uint64 bucket id."""
    cols = sigs[:, band * ROWS_PER_BAND : (band + 1) * ROWS_PER_BAND].astype(np.uint64)
    h = np.full(len(sigs), np.uint64(((band + 1) * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for c in range(cols.shape[1]):
            h = (h ^ cols[:, c]) * np.uint64(0x100000001B3)
    return h


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """The Jaccard similarity two signatures estimate."""
    return float(np.mean(a == b))


# How many neighbours in a sorted LSH bucket each row is compared with; buckets holding more similar
# texts than this are rare (template-like data) and only cost some recall, never a false removal.
NEIGHBOURS = 8


def near_duplicates(row_keys: np.ndarray, sigs: np.ndarray, threshold: float) -> np.ndarray:
    """Mask of rows (unique keys) that are near duplicates of a row with a smaller key."""
    drop = np.zeros(len(row_keys), dtype=bool)
    for band in range(BANDS):
        h = band_hashes(sigs, band)
        order = np.lexsort((row_keys, h))
        hs = h[order]
        for d in range(1, NEIGHBOURS + 1):
            i, j = order[:-d], order[d:]
            same = hs[:-d] == hs[d:]
            i, j = i[same], j[same]
            sim = _agreement(sigs, i, sigs, j)
            drop[j[(sim >= threshold) & (row_keys[i] != row_keys[j])]] = True
    return drop


def matches(a_sigs: np.ndarray, b_sigs: np.ndarray, threshold: float) -> np.ndarray:
    """Mask of rows of `a` whose signature is near (>= threshold) some row of `b`."""
    hit = np.zeros(len(a_sigs), dtype=bool)
    if not len(a_sigs) or not len(b_sigs):
        return hit
    for band in range(BANDS):
        ah, bh = band_hashes(a_sigs, band), band_hashes(b_sigs, band)
        border = np.argsort(bh, kind="stable")
        bs = bh[border]
        pos = np.searchsorted(bs, ah)
        for d in range(NEIGHBOURS):
            idx = np.minimum(pos + d, len(bs) - 1)
            cand = (bs[idx] == ah) & ~hit
            rows = np.nonzero(cand)[0]
            sim = _agreement(a_sigs, rows, b_sigs, border[idx[rows]])
            hit[rows[sim >= threshold]] = True
    return hit


def _agreement(a: np.ndarray, i: np.ndarray, b: np.ndarray, j: np.ndarray, block: int = 65_536) -> np.ndarray:
    """The estimated similarity of pairs (a[i[k]], b[j[k]]), in blocks to bound the copies."""
    out = np.empty(len(i), dtype=np.float64)
    for s in range(0, len(i), block):
        out[s : s + block] = np.mean(a[i[s : s + block]] == b[j[s : s + block]], axis=1)
    return out
