"""Binary BCH codes: construction, shortening, hard and soft (Chase) decoding.

SPEX reads the support ``k`` of a Fourier coefficient (a set of at most ``t``
features) off parity bits ``⟨d_j, k⟩``. With the systematic code
``[k | k·P]``, the word ``[0 … 0 | observed parities]`` differs from the
codeword of ``k`` exactly in the positions of ``k``'s features, so decoding it
as a word with at most ``t`` errors returns ``k``. The delays are the columns
of ``P``.

Arithmetic in GF(2^m) uses log / antilog tables; syndromes and the Chien search
and Berlekamp–Massey (``2t`` steps) run on every word at once, vectorised with numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from itertools import combinations

import numpy as np

__all__ = ["BCHCode"]

# Chase test words decoded in one batch (see BCHCode.decode_soft).
_PATTERNS_PER_DECODE = 4096
# Words × positions evaluated at once by the Chien search (see BCHCode._error_positions).
_CHIEN_CELLS = 1 << 21

# A primitive polynomial of each degree (bit i = coefficient of x^i).
_PRIMITIVE = {
    3: 0b1011,
    4: 0b10011,
    5: 0b100101,
    6: 0b1000011,
    7: 0b10001001,
    8: 0b100011101,
    9: 0b1000010001,
    10: 0b10000001001,
    11: 0b100000000101,
    12: 0b1000001010011,
    13: 0b10000000011011,
    14: 0b100010001000011,
    15: 0b1000000000000011,
    16: 0b10001000000001011,
}


@dataclass(frozen=True)
class _Field:
    """GF(2^m) with log / antilog tables (``exp`` is doubled to skip a modulo)."""

    m: int
    exp: np.ndarray = field(repr=False)
    log: np.ndarray = field(repr=False)

    @classmethod
    def build(cls, m: int) -> _Field:
        order = 2**m - 1
        exp = np.zeros(2 * order, dtype=np.int64)
        log = np.full(2**m, -1, dtype=np.int64)
        value = 1
        for i in range(order):
            exp[i] = value
            if log[value] != -1:
                raise ValueError(f"The polynomial for m={m} is not primitive.")
            log[value] = i
            value <<= 1
            if value >> m:
                value ^= _PRIMITIVE[m]
        exp[order:] = exp[:order]
        return cls(m, exp, log)

    @property
    def order(self) -> int:
        return 2**self.m - 1

    def mul(self, a: int, b: int) -> int:
        if a == 0 or b == 0:
            return 0
        return int(self.exp[self.log[a] + self.log[b]])

    def multiply(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Elementwise ``a · b`` of integer arrays (broadcast)."""
        zero = (a == 0) | (b == 0)
        return np.where(zero, 0, self.exp[np.where(zero, 0, self.log[a] + self.log[b])])

    def inverse(self, a: np.ndarray) -> np.ndarray:
        """Elementwise ``1 / a`` of a nonzero integer array."""
        return self.exp[(self.order - self.log[a]) % self.order]


def _poly_mul_gf2(a: int, b: int) -> int:
    out = 0
    while b:
        if b & 1:
            out ^= a
        a <<= 1
        b >>= 1
    return out


def _poly_mod_gf2(a: int, g: int) -> int:
    deg_g = g.bit_length() - 1
    while a.bit_length() - 1 >= deg_g:
        a ^= g << (a.bit_length() - 1 - deg_g)
    return a


def _minimal_polynomial(gf: _Field, power: int) -> int:
    """Minimal polynomial over GF(2) of α^power (product over its cyclotomic coset)."""
    coset, e = [], power % gf.order
    while e not in coset:
        coset.append(e)
        e = (2 * e) % gf.order
    poly = [1]  # coefficients in GF(2^m), lowest degree first
    for e in coset:
        root = int(gf.exp[e])
        nxt = [0] * (len(poly) + 1)
        for i, c in enumerate(poly):
            nxt[i + 1] ^= c  # x · c
            nxt[i] ^= gf.mul(c, root)  # root · c
        poly = nxt
    if any(c not in (0, 1) for c in poly):  # pragma: no cover - a property of GF(2^m)
        raise ArithmeticError("minimal polynomial is not binary")
    return sum(c << i for i, c in enumerate(poly))


@dataclass(frozen=True)
class BCHCode:
    """A primitive narrow-sense binary BCH code shortened to ``n`` message bits.

    Args:
        n: Message length (number of features).
        t: Number of errors corrected (largest interaction order recovered).

    Attributes:
        m: Field degree; the unshortened length is ``2**m − 1``.
        n_parity: Number of parity bits ``p``.
        parity_matrix: ``(n, p)`` 0/1 matrix ``P``: the parity bits of message
            ``k`` are ``k · P mod 2``; its columns are SPEX's delays.

    Examples:
        >>> code = BCHCode(128, 5)
        >>> code.m, code.n_parity
        (8, 40)
        >>> k = np.zeros(128, bool); k[[3, 70, 99]] = True
        >>> [s.tolist() for s in code.decode(code.parities(k[None]))]
        [[3, 70, 99]]
    """

    n: int
    t: int

    def __post_init__(self) -> None:
        if self.n < 1 or self.t < 1:
            raise ValueError(f"BCH code needs n >= 1 and t >= 1, got n={self.n}, t={self.t}.")

    @cached_property
    def _design(self) -> tuple[_Field, int]:
        for m in sorted(_PRIMITIVE):
            gf = _Field.build(m)
            if 2 * self.t > gf.order:
                continue
            g, seen = 1, set()
            for power in range(1, 2 * self.t + 1, 2):
                mp = _minimal_polynomial(gf, power)
                if mp not in seen:
                    seen.add(mp)
                    g = _poly_mul_gf2(g, mp)
            n_parity = g.bit_length() - 1
            if gf.order - n_parity >= self.n:
                return gf, g
        raise ValueError(f"No BCH code with m <= {max(_PRIMITIVE)} for n={self.n}, t={self.t}.")

    @property
    def m(self) -> int:
        return self._design[0].m

    @property
    def generator(self) -> int:
        """The generator polynomial as an integer (bit i = coefficient of x^i)."""
        return self._design[1]

    @property
    def n_parity(self) -> int:
        return self.generator.bit_length() - 1

    @cached_property
    def parity_matrix(self) -> np.ndarray:
        p, g = self.n_parity, self.generator
        rows = np.zeros((self.n, p), dtype=bool)
        remainder = _poly_mod_gf2(1 << p, g)  # x^(p + i) mod g, for i = 0, 1, ...
        for i in range(self.n):
            rows[i] = [(remainder >> j) & 1 for j in range(p)]
            remainder = _poly_mod_gf2(remainder << 1, g)
        return rows

    def parities(self, supports: np.ndarray) -> np.ndarray:
        """Parity bits ``k · P mod 2`` of boolean supports ``(B, n)`` -> ``(B, p)``."""
        return (supports.astype(np.int64) @ self.parity_matrix.astype(np.int64)) % 2 == 1

    # ------------------------------------------------------------ decoding
    @cached_property
    def _syndrome_powers(self) -> np.ndarray:
        """``α^(position · j)`` for each parity position and j = 1..2t: ``(p, 2t)``."""
        gf = self._design[0]
        positions = np.arange(self.n_parity)[:, None] * np.arange(1, 2 * self.t + 1)[None, :]
        return gf.exp[positions % gf.order]

    @cached_property
    def _chien_shifts(self) -> np.ndarray:
        """``(−power · position) mod order``, the exponent of ``(α^{−position})^power``,
        for power 0..t and every position of the shortened word: ``(t + 1, p + n)``."""
        powers = np.arange(self.t + 1)[:, None] * np.arange(self.n_parity + self.n)[None, :]
        return -powers % self._design[0].order

    @cached_property
    def _parity_rows(self) -> np.ndarray:
        """The parity matrix with an all-zero row appended, read by feature id ``n`` (padding)."""
        return np.vstack([self.parity_matrix, np.zeros((1, self.n_parity), dtype=bool)])

    def _syndromes(self, parity_bits: np.ndarray) -> np.ndarray:
        """``S_j = r(α^j)``, j = 1..2t, of words ``[parities | 0 … 0]`` -> ``(B, 2t)``."""
        powers = self._syndrome_powers
        out = np.zeros((len(parity_bits), 2 * self.t), dtype=np.int64)
        # One j at a time: a (B, p, 2t) table held 350 MB for 4,096 words at t = 21.
        for j in range(2 * self.t):
            out[:, j] = np.bitwise_xor.reduce(np.where(parity_bits, powers[:, j], 0), axis=1)
        return out

    def _locators(self, syndromes: np.ndarray) -> np.ndarray:
        """Berlekamp–Massey on every word at once: error-locator coefficients, lowest first.

        Returns ``(B, 2t + 1)``: a locator's degree never exceeds the number of
        steps run, so ``2t + 1`` coefficients hold it (zeros above its degree).
        Each word follows its own branch of the algorithm through boolean masks.
        """
        gf = self._design[0]
        n_words, n_steps = syndromes.shape
        width = n_steps + 1
        locator = np.zeros((n_words, width), dtype=np.int64)
        locator[:, 0] = 1
        previous = locator.copy()  # the locator before the last change of length
        length = np.zeros(n_words, dtype=np.int64)
        shift = np.ones(n_words, dtype=np.int64)
        last = np.ones(n_words, dtype=np.int64)  # the discrepancy at that change
        columns = np.arange(width)
        for step in range(n_steps):
            discrepancy = syndromes[:, step].copy()
            for i in range(1, step + 1):  # a locator's degree is at most its length <= step
                discrepancy ^= gf.multiply(locator[:, i], syndromes[:, step - i])
            changed = discrepancy != 0
            # locator − (discrepancy / last) · x^shift · previous
            scale = gf.multiply(discrepancy, gf.inverse(last))
            source = columns[None, :] - shift[:, None]
            shifted = np.take_along_axis(previous, np.maximum(source, 0), axis=1)
            update = gf.multiply(scale[:, None], np.where(source >= 0, shifted, 0))
            grows = changed & (2 * length <= step)
            previous = np.where(grows[:, None], locator, previous)
            length = np.where(grows, step + 1 - length, length)
            last = np.where(grows, discrepancy, last)
            shift = np.where(grows, 1, shift + 1)
            locator = np.where(changed[:, None], locator ^ update, locator)
        return locator

    def _error_positions(self, locators: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Chien search over the shortened length for each locator.

        Returns ``(decoded, roots)``: whether each word decodes (degree at most
        ``t``, with as many roots among the positions as its degree) and the
        ``(B, p + n)`` boolean positions in error.
        """
        gf = self._design[0]
        nonzero = locators != 0
        degree = locators.shape[1] - 1 - np.argmax(nonzero[:, ::-1], axis=1)
        shifts = self._chien_shifts
        roots = np.zeros((len(locators), shifts.shape[1]), dtype=bool)
        decoded = degree == 0
        searched = np.flatnonzero((degree > 0) & (degree <= self.t))
        # Chunks of words bound the (words × positions) table at n = 4,000.
        chunk = max(1, _CHIEN_CELLS // shifts.shape[1])
        for start in range(0, len(searched), chunk):
            rows = searched[start : start + chunk]
            total = np.zeros((len(rows), shifts.shape[1]), dtype=np.int64)
            for power in range(self.t + 1):
                coef = locators[rows, power]
                # coef · (α^{−position})^power, zero where the coefficient is (the
                # doubled antilog table takes exponents up to 2 · order, no modulo).
                terms = gf.exp[gf.log[coef][:, None] + shifts[power][None, :]]
                total ^= np.where((coef != 0)[:, None], terms, 0)
            found = total == 0
            roots[rows] = found
            decoded[rows] = found.sum(axis=1) == degree[rows]
        return decoded, roots

    def decode(self, parity_bits: np.ndarray) -> list[np.ndarray | None]:
        """Hard decoding: supports (feature ids) whose parities best explain each word.

        Args:
            parity_bits: ``(B, p)`` observed parity bits.

        Returns:
            For each word, the sorted feature ids of the decoded support (parity
            positions found in error are corrected and dropped), or ``None`` when
            more than ``t`` errors make the word undecodable.
        """
        parity_bits = np.atleast_2d(np.asarray(parity_bits, dtype=bool))
        if len(parity_bits) == 0:
            return []
        decoded, roots = self._error_positions(self._locators(self._syndromes(parity_bits)))
        word, position = np.nonzero(roots[:, self.n_parity :] & decoded[:, None])
        position = position.astype(np.int64)
        bounds = np.searchsorted(word, np.arange(len(roots) + 1)).tolist()
        return [
            position[bounds[i] : bounds[i + 1]] if ok else None
            for i, ok in enumerate(decoded.tolist())
        ]

    def decode_soft(
        self, soft: np.ndarray, *, n_flips: int | None = None
    ) -> list[np.ndarray | None]:
        """Chase decoding of soft parity observations.

        Args:
            soft: ``(B, p)`` real values, ideally ``±1`` = ``(−1)^{parity}``; the
                magnitude is the reliability.
            n_flips: How many least-reliable positions to try flipping (all
                ``2**n_flips`` patterns); default ``t``.

        Returns:
            Per word, the decoded support whose parities correlate best with
            ``soft`` among all test patterns (the first such pattern on ties;
            which of two exactly tied supports the rounding of their sums
            favours may differ between machines), or ``None`` if none decodes.
        """
        soft = np.atleast_2d(np.asarray(soft, dtype=float))
        n_flips = min(self.t if n_flips is None else n_flips, self.n_parity)
        patterns = [()] + [
            c for r in range(1, n_flips + 1) for c in combinations(range(n_flips), r)
        ]
        flips = np.zeros((len(patterns), n_flips), dtype=bool)
        for row, pattern in enumerate(patterns):
            flips[row, list(pattern)] = True
        weakest = np.argsort(np.abs(soft), axis=1, kind="stable")[:, :n_flips]
        best: list[np.ndarray | None] = [None] * len(soft)
        best_score = np.full(len(soft), -np.inf)
        # A few thousand test words at a time: all at once they held arrays of
        # words × patterns × parities (16 flips, 65,536 patterns: gigabytes).
        per_word = min(len(patterns), _PATTERNS_PER_DECODE)
        words_per_batch = max(1, _PATTERNS_PER_DECODE // per_word)
        for first in range(0, len(soft), words_per_batch):
            words = np.arange(first, min(first + words_per_batch, len(soft)))
            for start in range(0, len(patterns), per_word):
                chunk = flips[start : start + per_word]
                trials = np.repeat(soft[words] < 0, len(chunk), axis=0)
                rows = np.repeat(np.arange(len(trials)), n_flips)
                columns = np.repeat(weakest[words], len(chunk), axis=0).ravel()
                trials[rows, columns] ^= np.tile(chunk, (len(words), 1)).ravel()
                supports = self.decode(trials)
                scores = self._correlations(supports, np.repeat(soft[words], len(chunk), axis=0))
                scores = scores.reshape(len(words), len(chunk))
                for i, word in enumerate(words):
                    j = int(np.argmax(scores[i]))  # the first of equal scores, as in pattern order
                    if scores[i, j] > best_score[word]:
                        best[word] = supports[i * len(chunk) + j]
                        best_score[word] = scores[i, j]
        return best

    def _correlations(self, supports: list[np.ndarray | None], soft: np.ndarray) -> np.ndarray:
        """``(−1)^{parities of support} · soft`` per row; ``−inf`` where nothing decoded."""
        padded = np.full((len(supports), self.t), self.n, dtype=np.int64)
        for row, support in enumerate(supports):
            if support is not None:  # at most t features
                padded[row, : len(support)] = support
        # A feature id n reads an all-zero row: the padding adds no parity.
        parities = np.bitwise_xor.reduce(self._parity_rows[padded], axis=1)
        scores = np.einsum("ij,ij->i", 1.0 - 2.0 * parities, soft)
        # Infinite observations of both signs give NaN: no better than nothing decoded.
        scores[np.isnan(scores) | np.array([s is None for s in supports], dtype=bool)] = -np.inf
        return scores
