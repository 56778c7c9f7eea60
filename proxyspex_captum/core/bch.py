"""Binary BCH codes: construction, shortening, hard and soft (Chase) decoding.

SPEX reads the support ``k`` of a Fourier coefficient (a set of at most ``t``
features) off parity bits ``⟨d_j, k⟩``. With the systematic code
``[k | k·P]``, the word ``[0 … 0 | observed parities]`` differs from the
codeword of ``k`` exactly in the positions of ``k``'s features, so decoding it
as a word with at most ``t`` errors returns ``k``. The delays are the columns
of ``P``.

Arithmetic in GF(2^m) uses log / antilog tables; syndromes and the Chien search
are vectorised with numpy, Berlekamp–Massey runs per word (``2t`` steps).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from itertools import combinations

import numpy as np

__all__ = ["BCHCode"]

# Chase test patterns decoded in one batch (see BCHCode._decode_flipped).
_PATTERNS_PER_DECODE = 4096

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

    def inv(self, a: int) -> int:
        return int(self.exp[(self.order - self.log[a]) % self.order])


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
    def _syndromes(self, parity_bits: np.ndarray) -> np.ndarray:
        """``S_j = r(α^j)``, j = 1..2t, of words ``[parities | 0 … 0]`` -> ``(B, 2t)``."""
        gf = self._design[0]
        positions = np.arange(self.n_parity)[:, None] * np.arange(1, 2 * self.t + 1)[None, :]
        powers = gf.exp[positions % gf.order]  # (p, 2t)
        terms = np.where(parity_bits[:, :, None], powers[None], 0)
        return np.bitwise_xor.reduce(terms, axis=1)

    def _locator(self, syndromes: np.ndarray) -> list[int]:
        """Berlekamp–Massey: the error-locator polynomial (coefficients, lowest first)."""
        gf = self._design[0]
        locator, previous = [1], [1]
        length, shift, last = 0, 1, 1
        for step in range(2 * self.t):
            discrepancy = int(syndromes[step])
            for i in range(1, length + 1):
                if i < len(locator):
                    discrepancy ^= gf.mul(locator[i], int(syndromes[step - i]))
            if discrepancy == 0:
                shift += 1
                continue
            scale = gf.mul(discrepancy, gf.inv(last))
            update = [0] * shift + [gf.mul(scale, c) for c in previous]
            size = max(len(locator), len(update))
            new = [
                a ^ b
                for a, b in zip(
                    locator + [0] * (size - len(locator)),
                    update + [0] * (size - len(update)),
                    strict=True,
                )
            ]
            while len(new) > 1 and new[-1] == 0:
                new.pop()
            if 2 * length <= step:
                previous, length, last, shift = locator, step + 1 - length, discrepancy, 1
            else:
                shift += 1
            locator = new
        return locator

    def _error_positions(self, locator: list[int]) -> np.ndarray | None:
        """Chien search over the shortened length; ``None`` when it fails."""
        gf = self._design[0]
        degree = len(locator) - 1
        if degree == 0:
            return np.zeros(0, dtype=np.int64)
        if degree > self.t:
            return None
        positions = np.arange(self.n_parity + self.n)
        total = np.zeros(len(positions), dtype=np.int64)
        for power, coef in enumerate(locator):
            if coef:
                # coef · (α^{-pos})^power
                total ^= gf.exp[(gf.log[coef] - power * positions) % gf.order]
        roots = positions[total == 0]
        return roots if len(roots) == degree else None

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
        syndromes = self._syndromes(parity_bits)
        out: list[np.ndarray | None] = []
        for row in syndromes:
            if not row.any():
                out.append(np.zeros(0, dtype=np.int64))
                continue
            errors = self._error_positions(self._locator(row))
            out.append(None if errors is None else errors[errors >= self.n_parity] - self.n_parity)
        return out

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
            ``soft`` among all test patterns, or ``None`` if none decodes.
        """
        soft = np.atleast_2d(np.asarray(soft, dtype=float))
        n_flips = min(self.t if n_flips is None else n_flips, self.n_parity)
        hard = soft < 0
        patterns = [()] + [
            c for r in range(1, n_flips + 1) for c in combinations(range(n_flips), r)
        ]
        out: list[np.ndarray | None] = []
        for word, bits in zip(soft, hard, strict=True):
            weakest = np.argsort(np.abs(word), kind="stable")[:n_flips]
            best, best_score = None, -np.inf
            seen = set()
            for support in self._decode_flipped(bits, weakest, patterns):
                if support is None or tuple(support) in seen:
                    continue
                seen.add(tuple(support))
                k = np.zeros(self.n, dtype=bool)
                k[support] = True
                signs = 1.0 - 2.0 * self.parities(k[None])[0]
                score = float(signs @ word)
                if score > best_score:
                    best, best_score = support, score
            out.append(best)
        return out

    def _decode_flipped(
        self, bits: np.ndarray, weakest: np.ndarray, patterns: list[tuple[int, ...]]
    ) -> Iterator[np.ndarray | None]:
        """:meth:`decode` of ``bits`` with each pattern of ``weakest`` positions flipped.

        A few thousand patterns at a time: decoding them all at once held arrays
        of ``patterns × parities × n`` (16 flips, 65,536 patterns: gigabytes).
        """
        for start in range(0, len(patterns), _PATTERNS_PER_DECODE):
            chunk = patterns[start : start + _PATTERNS_PER_DECODE]
            trials = np.repeat(bits[None], len(chunk), axis=0)
            for row, pattern in enumerate(chunk):
                trials[row, weakest[list(pattern)]] ^= True
            yield from self.decode(trials)
