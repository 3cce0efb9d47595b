"""Expertise matching: keyword overlap and TF-IDF cosine similarity. No database here.

A proposal's text is its title, abstract and keywords; a reviewer's is their profile keywords. The
affinity of a pair (0..1) mixes how many of the proposal's keywords the reviewer lists with how similar the
two texts are; both parts are kept so the assignment can say why a pair was chosen.

`ExpertiseIndex.match` explains one pair; `ExpertiseIndex.scaled_affinities` scores every pair of a call at
once (1.2 M pairs at 2,000 proposals x 600 reviewers) with numpy, giving the same integers as `match`.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

KEYWORD_WEIGHT = 0.5
TEXT_WEIGHT = 0.5

_SPLIT = re.compile(r"[;,\n|]+")
_WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)
_SPACE = re.compile(r"\s+")
STOPWORDS = frozenset("""
about above after again against all also among and any are around because been before being below between
both but can could did does doing down during each either else few for from further had has have having her
here hers him his how however into its itself just may might more most much must new not now off once only
other our ours out over own per same she should since some such than that the their theirs them then there
these they this those through thus too under until upon use used using very via was were what when where
which while who whom why will with within without would yet you your study project research aim aims
propose proposed based approach approaches
""".split())


@lru_cache(maxsize=65536)
def fold(text: str | None) -> str:
    """Case-, accent-width- and space-insensitive form of a short text: 'Charité  BERLIN ' -> 'charité berlin'."""
    text = unicodedata.normalize("NFKC", text or "")
    return _SPACE.sub(" ", text).strip().casefold()


def _stem(word: str) -> str:
    """A very light stemmer: plural -s (not -ss, -us, -is) so 'biomarkers' meets 'biomarker'."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def split_keywords(value: str | Iterable[str] | None) -> list[str]:
    """Keywords as typed, without duplicates: from 'a; b, c' or a list. Order kept."""
    if value is None:
        return []
    parts = _SPLIT.split(value) if isinstance(value, str) else [p for v in value for p in _SPLIT.split(v or "")]
    seen: dict[str, str] = {}
    for part in parts:
        shown = _SPACE.sub(" ", part).strip(" .\t")
        if shown and keyword_key(shown) not in seen:
            seen[keyword_key(shown)] = shown
    return list(seen.values())


def keyword_key(keyword: str) -> str:
    """The comparable form of a keyword: folded, each word lightly stemmed."""
    return " ".join(_stem(w) for w in fold(keyword).split(" ") if w)


def tokens(text: str | None) -> list[str]:
    return [_stem(w) for w in _WORD.findall(fold(text)) if w not in STOPWORDS]


Vector = dict[str, float]


class TfIdf:
    """TF-IDF over a corpus of documents (sublinear tf, smoothed idf, L2-normalised vectors)."""

    def __init__(self, documents: Iterable[Sequence[str]]):
        docs = [set(d) for d in documents]
        self.n = len(docs)
        df: Counter[str] = Counter()
        for d in docs:
            df.update(d)
        self.idf = {t: math.log((1 + self.n) / (1 + c)) + 1.0 for t, c in df.items()}
        self._unseen = math.log(1 + self.n) + 1.0

    def vector(self, toks: Sequence[str]) -> Vector:
        counts = Counter(toks)
        vec = {t: (1.0 + math.log(c)) * self.idf.get(t, self._unseen) for t, c in counts.items()}
        norm = math.sqrt(sum(v * v for v in vec.values()))
        return {t: v / norm for t, v in vec.items()} if norm else {}


def cosine(a: Vector, b: Vector) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(v * b.get(t, 0.0) for t, v in a.items())


@dataclass(frozen=True)
class Match:
    """How well a reviewer fits a proposal, and the evidence."""

    affinity: float  # 0..1
    shared_keywords: tuple[str, ...]  # the proposal's keywords the reviewer lists, as the proposal writes them
    keyword_score: float  # share of the proposal's keywords covered
    text_similarity: float  # TF-IDF cosine of proposal text and reviewer keywords

    def words(self) -> str:
        parts = [f"shares keywords: {', '.join(self.shared_keywords)}" if self.shared_keywords
                 else "no shared keywords"]
        parts.append(f"text similarity {self.text_similarity:.2f}")
        return "; ".join(parts)


class ExpertiseIndex:
    """Affinities between proposals and reviewers of one call, computed once."""

    def __init__(self, proposals: dict[int, tuple[list[str], str]], reviewers: dict[int, list[str]]):
        """proposals: {id: (keywords, text)}; reviewers: {id: keywords}."""
        self._p_keys = {pid: {keyword_key(k): k for k in kws} for pid, (kws, _) in proposals.items()}
        self._r_keys = {rid: {keyword_key(k) for k in kws} for rid, kws in reviewers.items()}
        p_tokens = {pid: tokens(text) + [t for k in kws for t in tokens(k)] for pid, (kws, text) in proposals.items()}
        r_tokens = {rid: [t for k in kws for t in tokens(k)] for rid, kws in reviewers.items()}
        model = TfIdf(list(p_tokens.values()) + list(r_tokens.values()))
        self._p_vec = {pid: model.vector(t) for pid, t in p_tokens.items()}
        self._r_vec = {rid: model.vector(t) for rid, t in r_tokens.items()}

    def match(self, proposal_id: int, reviewer_id: int) -> Match:
        p_keys, r_keys = self._p_keys[proposal_id], self._r_keys[reviewer_id]
        shared = tuple(shown for key, shown in p_keys.items() if key in r_keys)
        kw = len(shared) / len(p_keys) if p_keys else 0.0
        sim = cosine(self._p_vec[proposal_id], self._r_vec[reviewer_id])
        sim = min(1.0, max(0.0, sim))
        return Match(KEYWORD_WEIGHT * kw + TEXT_WEIGHT * sim, shared, kw, sim)

    def scaled_affinities(self, proposal_ids: Sequence[int], reviewer_ids: Sequence[int], scale: int) -> np.ndarray:
        """round(match(p, r).affinity * scale) for every pair, as an integer matrix (rows: proposal_ids,
        columns: reviewer_ids), computed with matrix products instead of 1.2 M calls to `match`."""
        # Only the reviewers' keywords and tokens can be shared, so they are the only columns needed.
        key_col: dict[str, int] = {}
        for rid in reviewer_ids:
            for key in self._r_keys[rid]:
                key_col.setdefault(key, len(key_col))
        tok_col: dict[str, int] = {}
        for rid in reviewer_ids:
            for tok in self._r_vec[rid]:
                tok_col.setdefault(tok, len(tok_col))
        r_keys = _dense([dict.fromkeys(self._r_keys[rid], 1.0) for rid in reviewer_ids], key_col)
        r_vecs = _dense([self._r_vec[rid] for rid in reviewer_ids], tok_col)
        n_keys = np.array([len(self._p_keys[pid]) for pid in proposal_ids], dtype=np.float64)
        out = np.empty((len(proposal_ids), len(reviewer_ids)), dtype=np.int64)
        for start in range(0, len(proposal_ids), _ROWS):  # in blocks, to keep the dense rows small
            ids = proposal_ids[start:start + _ROWS]
            shared = _dense([dict.fromkeys(self._p_keys[pid], 1.0) for pid in ids], key_col) @ r_keys.T
            counts = n_keys[start:start + _ROWS, None]
            kw = np.divide(shared, counts, out=np.zeros_like(shared), where=counts > 0)
            sim = np.clip(_dense([self._p_vec[pid] for pid in ids], tok_col) @ r_vecs.T, 0.0, 1.0)
            scaled = (KEYWORD_WEIGHT * kw + TEXT_WEIGHT * sim) * scale
            block = np.rint(scaled).astype(np.int64)
            # A matrix product adds in another order than `cosine`, so the similarity may differ in its last
            # bit; that only matters where the scaled affinity is a hair from half a point: those few pairs
            # are computed the way `match` does. (No shared token: both give exactly 0.)
            for i, j in zip(*np.nonzero((np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6) & (sim > 0)), strict=True):
                block[i, j] = round(self.match(ids[i], reviewer_ids[j]).affinity * scale)
            out[start:start + _ROWS] = block
        return out


_ROWS = 512


def _dense(vectors: Sequence[dict[str, float]], columns: dict[str, int]) -> np.ndarray:
    """Sparse vectors as the rows of a dense matrix over `columns` (entries outside them are dropped)."""
    out = np.zeros((len(vectors), len(columns)), dtype=np.float64)
    for i, vec in enumerate(vectors):
        for key, value in vec.items():
            j = columns.get(key)
            if j is not None:
                out[i, j] = value
    return out
