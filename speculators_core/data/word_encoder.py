"""Exact, faster encoding for byte-level BPE tokenizers (GPT-2, Llama-3, Qwen2/3, DeepSeek-V3 style).

The Rust tokenizer spends most of its time on per-token bookkeeping (aligned normalized strings,
offsets, one allocation per token), not on BPE merges, and chat data repeats its words. So this
encoder:

1. splits the text on the tokenizer's added tokens, leftmost-longest, as the tokenizer does
   (those without a normaliser first, then the others, in the pieces between);
2. splits each piece into words with the tokenizer's own pre-tokenizer regexes (Python `regex`),
   matches and the gaps between them; a one-regex pre-tokenizer keeps matches only (`findall`,
   the fast case: GPT-2, Llama-3 and Qwen patterns match everything; a text one does not cover
   fails the byte count below and goes to the tokenizer);
3. looks each word up in a memo; a word not seen yet goes through the tokenizer's own BPE model
   (`Tokenizer.model.tokenize` on its byte-level form), so merges are never reimplemented;
4. derives each token's byte range from the byte length of its vocabulary string (byte-level BPE
   is lossless), and the loss mask from those ranges. Byte ranges give the same mask as the
   tokenizer's character offsets: trained spans start and end on character boundaries.

It is used only where it reproduces the tokenizer, checked at four levels:

- the tokenizer.json is a shape this module knows (`WordEncoder.build` names the first thing that
  is not, and the caller encodes everything with `encode_batch`): no normaliser, or NFC only; a
  pre-tokenizer of `Split(regex, isolated)` steps and a `ByteLevel` without prefix space; a BPE
  model without dropout or affixes; added tokens without strip/single-word rules; no offset
  trimming in the post-processor;
- the regex engines agree on every character a row holds: ASCII is probed when the encoder is
  built, other characters the first time a row holds them (each in a set of contexts, compared
  with the tokenizer's own pre-tokenizer; new characters are probed in batches, and a batch that
  disagrees is halved until the culprits are alone); a row with a character they disagree on, or
  with a text NFC would change, goes to `encode_batch`;
- the tokens' byte lengths add up to the text's byte length, row by row;
- the first rows each process encodes, and one row in `CHECK_EVERY` after that, are encoded by the
  tokenizer too and compared; a difference raises `WordEncoderMismatch`, and `prepare` starts
  over with `encode_batch` only.
"""

from __future__ import annotations

import json
from itertools import chain
from typing import Any, Sequence

import numpy as np

from speculators_core.data.errors import PrepareError

#: the pre-tokenizer regex of `ByteLevel(use_regex=True)` (tokenizers' GPT-2 pattern)
GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
#: every row of a process's first FIRST_CHECKED, then one in CHECK_EVERY, is checked with encode
FIRST_CHECKED = 4
CHECK_EVERY = 97
#: words memoised per process before the memo starts over (bounds memory on huge corpora)
MEMO_MAX = 400_000
#: contexts each probed character is pre-tokenized in, by both engines
PROBE_CONTEXTS = (
    "{c}", "a{c}", "{c}a", "A{c}B", " {c}", "{c} ", "  {c}", "{c}  x", "{c}{c}", "{c}{c}{c}{c}",
    "{c} {c}", "'{c}", "{c}'", "'{c}{c}", "'{c}e", "'{c}l", "'r{c}", "'l{c}", "'v{c}", "1{c}", "{c}1",
    "123{c}4567", "\n{c}", "{c}\n", "{c}\r\n", " \n{c}", "\t{c}", ".{c}", "{c}.", "\u00e9{c}",
    "{c}\u00e9", "\u4e2d{c}", "{c}\u00a0", "{c}\u3000 ",
)


class WordEncoderMismatch(PrepareError):
    """The word encoder disagreed with the tokenizer on a checked row."""


class _NotHere(Exception):
    """This row is for encode_batch (the BPE model refused one of its words)."""


def bytes_to_unicode() -> dict[int, str]:
    """The byte-level BPE alphabet: printable bytes stand for themselves, the others move to 256+."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1)) + list(
        range(ord("\u00ae"), ord("\u00ff") + 1))
    cs = list(bs)
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def _alternation(contents: Sequence[str]):
    import regex

    # longest first: at the leftmost match position the longest content wins (leftmost-longest)
    parts = sorted(set(contents), key=len, reverse=True)
    return regex.compile("(" + "|".join(regex.escape(c) for c in parts) + ")")


class WordEncoder:
    """Encodes texts like `backend.encode_batch(texts, add_special_tokens=False)`; see the module doc."""

    def __init__(self, backend: Any, patterns: list[str], nfc: bool) -> None:
        import regex

        self.backend = backend
        self.model = backend.model
        self.pre_tokenizer = backend.pre_tokenizer
        self.nfc = nfc
        self.patterns = [regex.compile(p) for p in patterns]
        # the same patterns for the stdlib engine, used on ASCII pieces (None: not rewritable, or
        # the ASCII probe found a difference)
        import re

        rewritten = [ascii_pattern(p) for p in patterns]
        self.ascii_patterns = ([re.compile(p, re.ASCII) for p in rewritten]
                               if all(p is not None for p in rewritten) else None)
        added = backend.get_added_tokens_decoder()
        self.added_ids = {str(t.content): int(i) for i, t in added.items()}
        raw = [str(t.content) for t in added.values() if not t.normalized]
        normed = [str(t.content) for t in added.values() if t.normalized]
        self.added_raw = _alternation(raw) if raw else None
        self.added_normed = _alternation(normed) if normed else None
        b2u = bytes_to_unicode()
        self._to_byte_level = {b: ord(c) for b, c in b2u.items()}
        size = backend.get_vocab_size(with_added_tokens=True)
        nbytes = np.full(size, -1, dtype=np.int64)
        vocab = backend.get_vocab(with_added_tokens=False)
        if vocab:
            # vectorised over the vocabulary: a token's byte length is its length when every
            # character is in the byte-level alphabet (one regex scan of all tokens finds the others)
            import re

            tokens = list(vocab)
            ids = np.fromiter(vocab.values(), dtype=np.int64, count=len(tokens))
            lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
            outside = re.compile("[^" + "".join(f"\\u{ord(c):04x}" for c in sorted(b2u.values())) + "]")
            ends = np.cumsum(lengths)
            hits = np.fromiter((m.start() for m in outside.finditer("".join(tokens))), dtype=np.int64)
            ok = (lengths > 0) & (ids < size)
            ok[np.searchsorted(ends, hits, side="right")] = False
            nbytes[ids[ok]] = lengths[ok]
        for i, t in added.items():
            if i < size:
                nbytes[i] = len(str(t.content).encode("utf-8"))
        self.nbytes = nbytes
        self.memo: dict[str, tuple[int, ...]] = {}
        self.ok_chars: set[str] = set()
        self.bad_chars: set[str] = set()
        self.rows = 0
        self.checked = 0
        self.fallback_rows = 0
        self._probe({chr(i) for i in range(128)})

    # -- construction ---------------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """Picklable without its tokenizer (see `bind`): the probe results, patterns and byte
        lengths travel; the memo and the row counters start afresh."""
        state = dict(self.__dict__)
        state.update(backend=None, model=None, pre_tokenizer=None, memo={}, rows=0, checked=0, fallback_rows=0)
        return state

    def bind(self, backend: Any) -> "WordEncoder":
        """Attach the tokenizer backend an unpickled encoder was built from."""
        self.backend = backend
        self.model = backend.model
        self.pre_tokenizer = backend.pre_tokenizer
        return self

    @classmethod
    def build(cls, backend: Any) -> tuple["WordEncoder | None", str]:
        """(encoder, "") when the tokenizer is a shape this module reproduces, else (None, why not)."""
        try:
            spec = _spec(backend)
        except Exception as exc:  # pragma: no cover - every Rust tokenizer serialises
            return None, f"tokenizer not serialisable ({exc})"
        norm = spec.get("normalizer")
        steps_n = (norm or {}).get("normalizers") if (norm or {}).get("type") == "Sequence" else [norm]
        steps_n = [n for n in steps_n or [] if n is not None]
        if any(n.get("type") != "NFC" for n in steps_n):
            return None, "normalizer " + "+".join(str(n.get("type")) for n in steps_n)
        pre = spec.get("pre_tokenizer")
        steps = (pre or {}).get("pretokenizers") if (pre or {}).get("type") == "Sequence" else [pre]
        if not steps or steps[-1] is None or steps[-1].get("type") != "ByteLevel":
            return None, "pre-tokenizer is not byte-level"
        patterns: list[str] = []
        for step in steps[:-1]:
            pattern = (step.get("pattern") or {}).get("Regex") if step.get("type") == "Split" else None
            if pattern is None or step.get("behavior") != "Isolated" or step.get("invert"):
                return None, f"pre-tokenizer step {step.get('type')} ({step.get('behavior', '')})"
            patterns.append(pattern)
        last = steps[-1]
        if last.get("add_prefix_space"):
            return None, "ByteLevel add_prefix_space"
        if last.get("use_regex", True):
            patterns.append(GPT2_PATTERN)
        if not patterns:
            return None, "pre-tokenizer has no word split"
        model = spec.get("model") or {}
        if model.get("type") != "BPE":
            return None, f"model {model.get('type')}"
        if model.get("dropout") or model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
            return None, "BPE dropout or subword affixes"
        for t in spec.get("added_tokens") or []:
            if t.get("lstrip") or t.get("rstrip") or t.get("single_word") or not t.get("content"):
                return None, f"added token {t.get('content')!r} has strip/single-word rules"
        if _trims_offsets(spec.get("post_processor")):
            return None, "post-processor trims offsets"
        if getattr(backend, "encode_special_tokens", False):
            return None, "encode_special_tokens is on"
        try:
            import regex

            for p in patterns:
                regex.compile(p)
        except Exception as exc:
            return None, f"pre-tokenizer regex not portable ({exc})"
        try:
            enc = cls(backend, patterns, nfc=bool(steps_n))
        except Exception as exc:
            return None, f"{type(exc).__name__}: {exc}"
        bad_ascii = sorted(enc.bad_chars)
        if bad_ascii:
            return None, f"regex engines disagree on {''.join(bad_ascii)!r}"
        return enc, ""

    # -- character probe ------------------------------------------------------------------------------
    def _word_spans(self, text: str, patterns: list | None = None) -> list[tuple[int, int]]:
        """Word (start, end) char offsets with Split(isolated) semantics: matches and the gaps."""
        pieces = [(0, len(text))]
        for pat in patterns or self.patterns:
            out = []
            for a, b in pieces:  # each piece is its own string to the next step, as in the tokenizer
                out += [(a + s, a + e) for s, e in _isolated_spans(pat, text[a:b])]
            pieces = out
        return pieces

    def _agree(self, chars: list[str]) -> bool:
        """Whether both engines split every probe context of `chars` alike (each context is one
        string holding it for every char in turn, so a batch costs one call per context)."""
        for ctx in PROBE_CONTEXTS:
            s = "".join(ctx.format(c=c) for c in chars)
            theirs = [span for _, span in self.pre_tokenizer.pre_tokenize_str(s)]
            if theirs != self._word_spans(s):
                return False
            if self.ascii_patterns is not None and s.isascii() and theirs != self._word_spans(s, self.ascii_patterns):
                self.ascii_patterns = None  # the rewrite is wrong somewhere: regex does all the splitting
        return True

    def _probe(self, chars: set[str]) -> None:
        """Sort `chars` into ok_chars and bad_chars: a batch that agrees is ok as a whole; one that
        does not is halved until the characters that disagree are alone."""
        todo = [sorted(chars)]
        while todo:
            batch = todo.pop()
            if self._agree(batch):
                self.ok_chars.update(batch)
            elif len(batch) == 1:
                self.bad_chars.add(batch[0])
            else:
                todo += [batch[: len(batch) // 2], batch[len(batch) // 2 :]]

    # -- encoding -------------------------------------------------------------------------------------
    def _pieces(self, text: str) -> list[str]:
        """Alternating [text, added token, text, ...] (added tokens at odd positions)."""
        parts = self.added_raw.split(text) if self.added_raw is not None else [text]
        if self.added_normed is None:
            return parts
        out: list[str] = []
        for k, part in enumerate(parts):
            # split returns [text, token, ..., text]: odd positions stay added tokens
            if k % 2:
                out.append(part)
            else:
                out.extend(self.added_normed.split(part))
        return out

    def _lookup(self, word: str) -> tuple[int, ...]:
        ids = self.memo.get(word)  # a word repeated in a piece: memoised by its first miss
        return ids if ids is not None else self._miss(word)

    def _miss(self, word: str) -> tuple[int, ...]:
        if len(self.memo) >= MEMO_MAX:
            self.memo.clear()
        u = word.encode("utf-8").decode("latin-1").translate(self._to_byte_level)
        try:
            ids = tuple(t.id for t in self.model.tokenize(u))
        except Exception:  # e.g. a byte missing from the vocabulary, no unk token: let encode_batch say
            raise _NotHere() from None
        self.memo[word] = ids
        return ids

    def _ids(self, text: str) -> np.ndarray:
        """Token ids of `text` (int64). Per word the memo holds a tuple of ids; the lookups and the
        concatenation run in C (map, chain), Python only touches the words not seen before."""
        parts: list[tuple[int, ...] | None] = []
        extend = parts.extend
        memo_get = self.memo.get
        added = self.added_ids
        ascii_patterns = self.ascii_patterns
        for k, piece in enumerate(self._pieces(text)):
            if k % 2:
                parts.append((added[piece],))
                continue
            if not piece:
                continue
            patterns = ascii_patterns if ascii_patterns is not None and piece.isascii() else self.patterns
            single = patterns[0] if len(patterns) == 1 else None
            if single is not None:
                words = single.findall(piece)
            else:
                words = [piece]
                for pat in patterns:
                    words = [w for p in words for w in _split_isolated(pat, p)]
            got = list(map(memo_get, words))
            if None in got:
                got = [ids if ids is not None else self._lookup(w) for ids, w in zip(got, words)]
            extend(got)
        return np.fromiter(chain.from_iterable(parts), dtype=np.int64)

    def eligible(self, text: str) -> bool:
        """Whether every character of `text` has been checked (probing new ones) and NFC keeps it."""
        if text.isascii():
            return True
        new = set(text).difference(self.ok_chars)
        if new:
            unseen = new - self.bad_chars
            if unseen:
                self._probe(unseen)
            if not new.isdisjoint(self.bad_chars):
                return False
        if self.nfc and self.backend.normalizer.normalize_str(text) != text:
            return False
        return True

    def encode_with_mask(self, text: str, spans: Sequence[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray] | None:
        """(ids int32, mask int8) as the tokenizer and `masks.encode_with_masks` give, or None when
        this row must go through the tokenizer (see `eligible`)."""
        if not self.eligible(text):
            self.fallback_rows += 1
            return None
        try:
            ids = self._ids(text)
        except _NotHere:
            self.fallback_rows += 1
            return None
        lengths = self.nbytes[ids] if len(ids) else np.zeros(0, dtype=np.int64)
        ascii_text = text.isascii()
        n_bytes = len(text) if ascii_text else len(text.encode("utf-8"))
        if (lengths < 0).any() or int(lengths.sum()) != n_bytes:
            self.fallback_rows += 1
            return None
        ends = np.cumsum(lengths)
        starts = ends - lengths
        mask = np.zeros(len(ids), dtype=np.int8)
        for a, b in spans:
            if not ascii_text:
                a, b = len(text[:a].encode("utf-8")), len(text[:b].encode("utf-8"))
            # tokens overlapping [a, b): from the first ending after a to the first starting at b
            mask[int(np.searchsorted(ends, a, side="right")) : int(np.searchsorted(starts, b, side="left"))] = 1
        ids32 = ids.astype(np.int32)
        if self.rows < FIRST_CHECKED or self.rows % CHECK_EVERY == 0:
            self._check(text, ids32)
        self.rows += 1
        return ids32, mask

    def _check(self, text: str, ids: np.ndarray) -> None:
        self.checked += 1
        theirs = self.backend.encode(text, add_special_tokens=False).ids
        if len(theirs) != len(ids) or not np.array_equal(np.asarray(theirs, dtype=np.int32), ids):
            n = min(len(theirs), len(ids))
            at = next((i for i in range(n) if theirs[i] != ids[i]), n)
            raise WordEncoderMismatch(
                f"the word encoder's tokens differ from the tokenizer's at token {at} "
                f"({len(ids)} vs {len(theirs)} tokens)"
            )


_CATEGORIES = ("L", "Lu", "Ll", "Lt", "Lm", "Lo", "M", "Mn", "Mc", "Me", "N", "Nd", "Nl", "No", "P", "Pc",
               "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "S", "Sm", "Sc", "Sk", "So", "Z", "Zs", "Zl", "Zp",
               "C", "Cc", "Cf", "Co", "Cn", "Cs")


def _ascii_members(category: str) -> str:
    """The ASCII characters of a Unicode general category, escaped for a `re` character class."""
    import re
    import unicodedata

    return "".join(re.escape(chr(i)) for i in range(128) if unicodedata.category(chr(i)).startswith(category))


def ascii_pattern(pattern: str) -> str | None:
    """`pattern` (Onig syntax, Unicode) rewritten for the stdlib `re` with re.ASCII, for texts that
    are all ASCII: each `\p{Cat}` becomes the category's ASCII members. None where the pattern uses
    anything this rewrite does not know (the `regex` module then does all the splitting).

    The stdlib engine is about twice as fast as `regex` on these patterns. Whether the rewrite
    splits like the tokenizer is not assumed: the ASCII probe compares it on every ASCII character.
    """
    import re

    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    class_start = 0
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= n:
                return None
            nxt = pattern[i + 1]
            if nxt in "pP":
                m = re.match(r"\\[pP](?:\{\^?([A-Za-z]+)\}|([A-Za-z]))", pattern[i:])
                if m is None:
                    return None
                cat = m.group(1) or m.group(2)
                negated = nxt == "P" or pattern[i + 2 : i + 4] == "{^"
                if cat not in _CATEGORIES:
                    return None
                members = _ascii_members(cat)
                if in_class:
                    if negated:
                        return None
                    out.append(members)
                else:
                    out.append(("[^" + members + "]" if members else ".") if negated else
                               ("[" + members + "]" if members else "(?!)"))
                i += m.end()
                continue
            if nxt in "hHRXKGzZAbByYoOkgx0123456789u":  # Onig escapes with other (or no) meanings in re
                return None
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if c == "[" or (c == "&" and pattern[i : i + 2] == "&&"):
                return None  # nested sets and intersections
            if c == "]" and i > class_start:
                in_class = False
                if out and out[-1] in ("[", "[^"):
                    return None  # the class became empty
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            if pattern[i : i + 2] == "[^":
                out.append("[^")
                i += 2
            else:
                out.append("[")
                i += 1
            class_start = i + (1 if i < n and pattern[i] == "]" else 0)  # a leading ] is literal
            continue
        if c == "(" and pattern[i : i + 2] == "(?" and i + 2 < n and pattern[i + 2] not in ":=!<i":
            return None  # (?>...) atomic, (?m...) and other groups: leave them to regex
        out.append(c)
        i += 1
    if in_class:
        return None
    rewritten = "".join(out)
    try:
        re.compile(rewritten, re.ASCII)
    except re.error:
        return None
    return rewritten


def _isolated_spans(pat: Any, text: str) -> list[tuple[int, int]]:
    """`Split(pattern, "isolated")`: the (start, end) of every match and every gap between them,
    in order (empty matches split nothing)."""
    out: list[tuple[int, int]] = []
    pos = 0
    for m in pat.finditer(text):
        s, e = m.span()
        if s == e:
            continue
        if s > pos:
            out.append((pos, s))
        out.append((s, e))
        pos = e
    if pos < len(text):
        out.append((pos, len(text)))
    return out


def _split_isolated(pat: Any, text: str) -> list[str]:
    return [text[s:e] for s, e in _isolated_spans(pat, text)]


def _spec(backend: Any) -> dict[str, Any]:
    """The parts of the tokenizer.json spec `build` checks, serialised component by component (the
    whole `to_str()` of a 129k-vocabulary tokenizer is ~10 MB of JSON: about 0.4 s to write and
    parse); the whole spec where a component will not serialise on its own."""
    try:
        def part(obj: Any) -> Any:
            return None if obj is None else json.loads(obj.__getstate__())

        model = backend.model
        model_spec = {"type": type(model).__name__}
        for attr in ("dropout", "continuing_subword_prefix", "end_of_word_suffix"):
            model_spec[attr] = getattr(model, attr, None)
        added = [{"content": str(t.content), "lstrip": t.lstrip, "rstrip": t.rstrip, "single_word": t.single_word}
                 for t in backend.get_added_tokens_decoder().values()]
        return {"normalizer": part(backend.normalizer), "pre_tokenizer": part(backend.pre_tokenizer),
                "post_processor": part(backend.post_processor), "model": model_spec, "added_tokens": added}
    except Exception:
        return json.loads(backend.to_str())


def _trims_offsets(post: dict | None) -> bool:
    if not post:
        return False
    if post.get("type") == "Sequence":
        return any(_trims_offsets(p) for p in post.get("processors") or [])
    return post.get("type") in ("ByteLevel", "RobertaProcessing") and bool(post.get("trim_offsets", True))
