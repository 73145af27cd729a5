"""Notebook parameters that arrive as text: lists and mappings given on a command line.

Papermill's ``-p NAME VALUE`` passes every value that is not a number, ``True``/``False`` or
``None`` as a **string**: ``-p MODELS '["V-SKNN"]'`` gives the notebook the nine characters
``["V-SKNN"]``, and a loop over it would see ``[``, ``"``, ``V``, ... Each notebook passes its
list and mapping parameters through these helpers in the cell right after its ``parameters``
cell::

    MODELS = as_list(MODELS, "MODELS")            # ["V-SKNN"], '["V-SKNN"]', "V-SKNN,SKNN"
    SEEDS = as_list(SEEDS, "SEEDS", of=int)       # [0, 1], "[0, 1]", "0,1"
    CONFIG = as_dict(CONFIG, "CONFIG")            # {...} or '{"SASRec": {"epochs": 2}}'

A real list (from ``-y "{MODELS: [V-SKNN]}"``, a plan, or the cell itself) passes through; a
string is read as a JSON/YAML list when it starts with ``[``, else as comma-separated items;
anything else is refused with a message that names the parameter.
"""
from __future__ import annotations

import json

import yaml


class ParameterError(ValueError):
    """A notebook parameter of the wrong shape (the message names the parameter)."""


def _scalar(text: str):
    """One comma-separated item: a JSON number, ``true``/``false``/``null`` as JSON reads them,
    else the text itself (so ``no``, ``on`` or ``mean:harmonic`` stay strings)."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if value is None or isinstance(value, (bool, int, float)) else text


def _parse(text: str, name: str, kind: str):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ParameterError(f"{name}: could not read {text!r} as a {kind} ({e.__class__.__name__}: "
                             f"{str(e).splitlines()[0]})") from None


def as_list(value, name: str, *, of: type | None = None) -> list:
    """``value`` as a list: a list or tuple as it is, a string parsed (``'["a", "b"]'``,
    ``'[0, 1]'``, ``"a,b"``, ``"a"``; ``""`` is the empty list). With ``of`` every item must
    be of that type (``of=int`` also takes ``"3"``); the error names the parameter."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            parsed = _parse(text, name, "list")
        elif text.startswith("{"):
            raise ParameterError(f"{name} must be a list, got the mapping {value!r}")
        else:
            parsed = [_scalar(part.strip()) for part in text.split(",") if part.strip()]
        if not isinstance(parsed, list):
            raise ParameterError(f"{name} must be a list, got {value!r}")
        value = parsed
    elif isinstance(value, tuple):
        value = list(value)
    elif not isinstance(value, list):
        raise ParameterError(f"{name} must be a list (e.g. [\"a\", \"b\"] or a,b), got {type(value).__name__} "
                             f"{value!r}")
    if of is not None:
        value = [_typed(v, of, name, i) for i, v in enumerate(value)]
    return value


def _typed(v, of: type, name: str, i: int):
    if isinstance(v, of) and not (of is int and isinstance(v, bool)):
        return v
    if of in (int, float) and isinstance(v, str):
        try:
            return of(v)
        except ValueError:
            pass
    raise ParameterError(f"{name}[{i}] must be {of.__name__}, got {v!r}")


def as_dict(value, name: str) -> dict:
    """``value`` as a dict: a dict as it is, a string parsed as a JSON/YAML mapping
    (``'{"SASRec": {"epochs": 2}}'``, ``"{SASRec: {epochs: 2}}"``; ``""`` is the empty dict).
    Anything else is refused with a message naming the parameter."""
    if isinstance(value, str):
        parsed = _parse(value, name, "mapping") if value.strip() else {}
        if not isinstance(parsed, dict):
            raise ParameterError(f"{name} must be a mapping like {{model: {{field: value}}}}, got {value!r}")
        return parsed
    if not isinstance(value, dict):
        raise ParameterError(f"{name} must be a mapping like {{model: {{field: value}}}}, got "
                             f"{type(value).__name__} {value!r}")
    return value


__all__ = ["ParameterError", "as_dict", "as_list"]
