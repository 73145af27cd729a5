"""Generated text → catalogue items (paper §6.2.1, §6.2.2), never crashing on bad output.

* :func:`parse_output`: one answer → names. GenItem: the text up to the first newline / end
  marker; RecSys'23: up to ``###``; lists (GenList between the second ``BEGIN`` and ``END``,
  Classify, Rank): ``N. name`` lines, falling back to the preamble-stripped text when ``END`` is
  missing and to plain lines when there is no numbering. Bytes that are not UTF-8, empty text and
  text without any name are **parse failures**: counted, never raised.
* :class:`Catalogue`: the names a model may recommend, name → item (several items can share a
  title: the most popular in train wins, then the smaller id), exact lookup, ``rapidfuzz``
  fuzzy lookup, and nearest neighbours by dot product of unit-norm text embeddings.
* :func:`map_samples` (GenItem / RecSys'23, §6.2.1): count identical names over the n samples;
  a unique exact name is recommended as is; a name generated c > 1 times is kept once and gets
  c − 1 embedding neighbours, a hallucinated name c neighbours (skipping recommended items,
  items named in this session's samples and prompt items); list = exact matches in first-
  appearance order, then the neighbours.
* :func:`map_list` (GenList): exact name, else the nearest catalogue item not already listed.
* :func:`map_fuzzy` (Classify / Rank): exact or ``rapidfuzz`` best match among the available
  names; a duplicate match falls back to the **next best** unused match (the reference took the
  last one, spec §12 item 9: ``fallback="last"`` is that faithful option).

Prompt items are never recommended. :class:`OutputStats` counts, per run, the share of unique,
duplicate and hallucinated names among the generated ones, parse failures and valid names.

Deviations: a unique exact name that is a prompt item is replaced like a hallucination (the
reference could recommend it); an empty completion gets no neighbours (the reference embedded a
zero vector, whose "neighbours" are arbitrary): free places are filled with the most popular
train items not yet listed (``fill="popular"``), so every list has k items.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ..topk import topk_from_scores
from .cases import LIST_BEGIN, LIST_END, RECSYS23_END

_NUMBERED = re.compile(r"^\s*(\d+)\s*[.)]\s*(.+?)\s*$")


def normalize_name(name: str) -> str:
    """The form names are matched in: stripped, inner whitespace collapsed."""
    return " ".join(str(name).split())


def decode(text) -> str | None:
    """``str`` as is; ``bytes`` decoded as UTF-8; None when that fails (a parse failure)."""
    if isinstance(text, bytes):
        try:
            return text.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None if text is None else str(text)


def parse_output(text, variant: str, max_names: int = 20) -> tuple[list[str], bool]:
    """Names in one generated answer and whether it was malformed (see the module docstring).

    Returns:
        ``(names, failed)``: at most ``max_names`` non-empty names; ``failed`` when the text was
        not decodable, empty, had no name, or (lists) had neither numbering nor an END marker.
    """
    t = decode(text)
    if t is None or "\ufffd" in t or not t.strip():
        return [], True
    if variant in ("genitem", "recsys23"):
        if variant == "recsys23":
            t = t.split(RECSYS23_END.strip())[0]
        line = next((ln for ln in t.splitlines() if ln.strip()), "")
        # a numbered answer ("1. Name", "2) Name"): the number goes; "2.5% Gel" or "2.0mm Roller" keep theirs
        name = normalize_name(re.sub(r"^\s*\d+\s*[.)]\s+", "", line))
        return ([name], False) if name else ([], True)
    failed = False
    body = t
    if variant == "genlist":
        parts = t.split(LIST_BEGIN)
        body = parts[2] if len(parts) > 2 else parts[-1]
        if LIST_END in body:
            body = body.split(LIST_END)[0]
        else:
            failed = True
    lines = [ln for ln in body.splitlines() if ln.strip()]
    nums = [m.group(2) for ln in lines if (m := _NUMBERED.match(ln))]
    if nums:
        names = nums
    else:
        failed = True
        names = [ln for ln in lines if ln.strip() not in (LIST_BEGIN, LIST_END) and not ln.strip().endswith(":")]
    names = [normalize_name(n) for n in names if normalize_name(n)][:max_names]
    return names, failed or not names


@dataclass
class OutputStats:
    """Counts over a run's generated names (shares in :meth:`shares`)."""

    outputs: int = 0  # generated answers (samples / beams / lists)
    parse_failures: int = 0  # answers counted malformed
    names: int = 0  # names parsed
    unique: int = 0  # names not generated before for the same prompt
    duplicate: int = 0  # names generated before for the same prompt
    hallucinated: int = 0  # names not in the catalogue (after exact matching)
    valid: int = 0  # names naming a catalogue item exactly
    prompt_items: int = 0  # names of an item of the prompt (never recommended)
    fuzzy: int = 0  # names mapped by fuzzy string match
    neighbours: int = 0  # list places filled by embedding nearest neighbours
    filled: int = 0  # list places filled by popularity (nothing else left)

    def add(self, other: "OutputStats") -> None:
        for k, v in asdict(other).items():
            setattr(self, k, getattr(self, k) + v)

    def count_names(self, names: list[str], catalogue: "Catalogue", prompt_ids=()) -> None:
        seen = set()
        prompt = set(int(i) for i in prompt_ids)
        for n in names:
            self.names += 1
            if n in seen:
                self.duplicate += 1
            else:
                self.unique += 1
                seen.add(n)
            item = catalogue.exact(n)
            if item < 0:
                self.hallucinated += 1
            else:
                self.valid += 1
                self.prompt_items += int(item in prompt)

    def shares(self) -> dict:
        """unique/duplicate/hallucinated/valid shares of the names; parse failures of the outputs."""
        n, o = max(self.names, 1), max(self.outputs, 1)
        return {"unique_share": self.unique / n, "duplicate_share": self.duplicate / n,
                "hallucinated_share": self.hallucinated / n, "valid_name_share": self.valid / n,
                "parse_failure_share": self.parse_failures / o, "prompt_item_share": self.prompt_items / n,
                **{k: int(v) for k, v in asdict(self).items()}}


class Catalogue:
    """Recommendable items with their names, embeddings and popularity.

    Args:
        item_ids: (m,) the items (e.g. every named item seen in train).
        names: item_id → name.
        popularity: item_id → train count (ranks items sharing a name, and the final fill).
        vectors: (m, d) unit-norm text embeddings of the items (rows as ``item_ids``), or None
            (no nearest-neighbour replacement: free places are filled by popularity).
        embed: texts → (len, d) unit-norm vectors, the same model as ``vectors``.
    """

    def __init__(self, item_ids, names: pd.Series, popularity: pd.Series, vectors=None, embed=None):
        ids = np.asarray(item_ids, dtype=np.int64)
        nm = names.reindex(ids).fillna("").astype(str).map(normalize_name).to_numpy()
        keep = nm != ""
        self.ids, self.names = ids[keep], nm[keep]
        self.pop = popularity.reindex(self.ids).fillna(0).to_numpy(np.float64)
        self.vectors = None if vectors is None else np.asarray(vectors, dtype=np.float32)[keep]
        self.embed = embed
        order = np.lexsort((self.ids, -self.pop))  # popular first, then smaller id
        self.by_name: dict[str, int] = {}
        for j in order:
            self.by_name.setdefault(self.names[j], int(self.ids[j]))
        self.popular = self.ids[order]
        self.row = {int(i): r for r, i in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    def exact(self, name: str) -> int:
        """The item of an exactly matching name, −1 when none."""
        return self.by_name.get(normalize_name(name), -1)

    def name_of(self, item_id: int) -> str:
        return self.names[self.row[int(item_id)]]

    def neighbours(self, vectors: np.ndarray, k: int) -> np.ndarray:
        """(n, k) catalogue rows by dot product with each vector, ties by the smaller item id."""
        if self.vectors is None or len(vectors) == 0:
            return np.full((len(vectors), 0), -1, np.int64)
        return topk_from_scores(vectors @ self.vectors.T, min(k, len(self.ids)))[0]

    def embed_texts(self, texts: list[str]) -> np.ndarray | None:
        if self.embed is None or self.vectors is None or not texts:
            return None
        return np.asarray(self.embed(list(texts)), dtype=np.float32)


def _fill(out: list[int], banned: set, catalogue: Catalogue, k: int, stats: OutputStats) -> None:
    for i in catalogue.popular:
        if len(out) >= k:
            break
        if int(i) not in banned:
            out.append(int(i)); banned.add(int(i)); stats.filled += 1


def _neighbour_ids(catalogue: Catalogue, vectors, want: int, banned: set) -> list[list[int]]:
    """For each vector, up to ``want[i]`` nearest items not in ``banned`` (updated), in order."""
    out = []
    if vectors is None:
        return [[] for _ in want]
    rows = catalogue.neighbours(vectors, max(want, default=0) + len(banned) + 1)
    for r, w in zip(rows, want):
        got = []
        for j in r:
            if len(got) >= w or j < 0:
                break
            i = int(catalogue.ids[j])
            if i not in banned:
                got.append(i); banned.add(i)
        out.append(got)
    return out


def map_samples(samples: list, catalogue: Catalogue, prompt_ids, k: int = 20, variant: str = "genitem",
                fill: str = "popular", names_given: bool = False) -> tuple[list[int], OutputStats]:
    """§6.2.1 count-and-replace of one prompt's n sampled answers into a top-k (module docstring).
    ``names_given``: the answers are catalogue names already (the constrained beam's), matched as
    they are (normalised, RecSys'23's end marker cut), never parsed as generated text."""
    st = OutputStats(outputs=len(samples))
    names = []
    for s in samples:
        if names_given:
            names.append(normalize_name(str(s).split(RECSYS23_END.strip())[0] if variant == "recsys23" else s))
            continue
        got, failed = parse_output(s, variant, max_names=1)
        st.parse_failures += int(failed)
        names += got
    st.count_names(names, catalogue, prompt_ids)
    prompt = {int(i) for i in prompt_ids}
    counts = Counter(names)  # insertion order = first appearance
    direct, need = [], []
    banned = set(prompt) | {catalogue.exact(n) for n in counts} - {-1}
    for name, c in counts.items():
        item = catalogue.exact(name)
        if item >= 0 and item not in prompt:
            direct.append(item)
            if c > 1:
                need.append((name, c - 1))
        else:
            need.append((name, c))
    vecs = catalogue.embed_texts([n for n, _ in need])
    repl = _neighbour_ids(catalogue, vecs, [c for _, c in need], banned)
    out = list(dict.fromkeys(direct)) + [i for r in repl for i in r]
    st.neighbours += sum(len(r) for r in repl)
    out = out[:k]
    if fill == "popular":
        _fill(out, set(out) | prompt, catalogue, k, st)
    return out, st


def map_list(text, catalogue: Catalogue, prompt_ids, k: int = 20, variant: str = "genlist",
             fill: str = "popular") -> tuple[list[int], OutputStats]:
    """GenList: parse a numbered list; exact name → item, otherwise (hallucinated, duplicate or
    prompt item) the nearest catalogue item not already listed."""
    names, failed = parse_output(text, variant, max_names=k)
    st = OutputStats(outputs=1, parse_failures=int(failed))
    st.count_names(names, catalogue, prompt_ids)
    prompt = {int(i) for i in prompt_ids}
    out, banned, todo = [], set(prompt), []
    for pos, n in enumerate(names):
        item = catalogue.exact(n)
        if item >= 0 and item not in banned:
            out.append(item); banned.add(item)
        else:
            todo.append(n)
    vecs = catalogue.embed_texts(todo)
    repl = _neighbour_ids(catalogue, vecs, [1] * len(todo), banned)
    out += [i for r in repl for i in r]
    st.neighbours += sum(len(r) for r in repl)
    out = out[:k]
    if fill == "popular":
        _fill(out, set(out) | prompt, catalogue, k, st)
    return out, st


def map_fuzzy(text, available_ids, catalogue: Catalogue, prompt_ids, k: int = 20, variant: str = "rank",
              fallback: str = "next", append_rest: bool = False) -> tuple[list[int], OutputStats]:
    """Classify / Rank: each parsed name → an available item by exact or ``rapidfuzz`` (WRatio)
    match; a match already used falls back to the next best unused one (``fallback="last"``: the
    reference's last unused one). ``append_rest`` (Rank) appends the unnamed candidates in their
    given order, so the output is a re-ranking of the candidates."""
    from rapidfuzz import fuzz, process  # only for fuzzy name mapping

    names, failed = parse_output(text, variant, max_names=k)
    st = OutputStats(outputs=1, parse_failures=int(failed))
    st.count_names(names, catalogue, prompt_ids)
    prompt = {int(i) for i in prompt_ids}
    avail = [int(i) for i in available_ids if int(i) not in prompt and int(i) in catalogue.row]
    choices = [catalogue.name_of(i) for i in avail]
    out, used = [], set()
    for n in names:
        if not choices:
            break
        exact = [j for j, c in enumerate(choices) if c == n and avail[j] not in used]
        if exact:
            j = exact[0]
        else:
            ranked = process.extract(n, choices, scorer=fuzz.WRatio, limit=len(choices))
            free = [r[2] for r in ranked if avail[r[2]] not in used]
            if not free:
                continue
            j = free[-1] if fallback == "last" and avail[ranked[0][2]] in used else free[0]
            st.fuzzy += 1
        used.add(avail[j]); out.append(avail[j])
    if append_rest:
        out += [i for i in avail if i not in used]
    return out[:k], st
