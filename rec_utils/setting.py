"""What identifies a run: its **setting** (everything but the seed that changes a result).

A run of the study is (setting, split fingerprint, seed). The setting says which model was
built from which configuration and evaluated how::

    setting = Setting.of("V-SKNN", split, preset="beauty", overrides={"k": 50})
    setting.config     # {...preset's V-SKNN config..., "k": 50}: what the model is built from
    setting.label      # "k=50": the row label of summary.csv, derived, never typed
    setting.id         # short hash of the whole setting (stored in every run record)

Fields (all stored as a dict in every run record, so runs can be queried by any of them):

* ``model`` — the paper's name (``V-SKNN``, ``SASRec``, ...); ``dataset``, ``protocol``;
* ``config`` — the given hyper-parameters: the preset's configuration with ``overrides`` on top
  (an embedding spec is part of it for the models that embed text); code defaults are not
  repeated here but stored beside it as the run's resolved config;
* ``preset`` — the preset name the config starts from (``None`` when ``selected_by`` a search);
* ``overrides`` — what the user changed on top of the preset (shown in the label);
* ``selected_by`` — set when ``config`` was chosen by a search (e.g. ``"validation grid"``);
* ``tie_order``/``tie_seed`` — the within-session order of same-timestamp interactions;
* ``test_sample``/``test_sample_seed``, ``train_sample``/``train_sample_seed`` — sampled runs
  (0 = all), so a quick run never replaces a full one;
* ``label_fields`` — parts the label always shows even at their default (``"ties"`` for a
  tie-order spread, ``"preset"`` for a preset run next to a search winner). Presentation
  only: not part of :attr:`Setting.id`, so the same computation is stored once.

The label lists, comma-separated and in this order, only what differs from the study's
standard setting: the tie order (``tie_order=file`` or ``tie_order=shuffle,tie_seed=3``), a
non-standard preset (``preset=beauty-extended`` or ``preset=default``; the standard preset is the
paper's ``beauty``, under leave-one-out this project's ``beauty-loo`` where the model has one; a
setting whose config was given or searched, ``preset=None``, names none), every override (``k=v``, sorted by field), and
the samples (``train_sessions=800``, ``test_sessions=500``, with ``@seed`` when the sample seed
is not 0). The faithful run of a model has the empty label.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

from .models import preset_config
from .utils import canonical_json, short_hash

#: The standard preset of each protocol (not named in labels): the paper's Beauty optima, and for
#: leave-one-out this project's ``beauty-loo`` where the model has an entry there.
STANDARD_PRESETS = {"temporal": "beauty", "loo": "beauty-loo"}


def standard_preset(model: str, protocol: str) -> str:
    """The preset a row of ``model`` under ``protocol`` has without a ``preset=`` label."""
    preset = STANDARD_PRESETS.get(protocol.split("-")[0], "beauty")
    return preset if preset == "beauty" or preset_config(model, preset) else "beauty"
LABEL_FIELDS = ("ties", "preset")


def _json(obj):
    """``obj`` as plain JSON types (tuples → lists, numpy scalars → numbers), for stable hashing."""
    return json.loads(json.dumps(obj, sort_keys=True, default=_default))


def _default(o):
    if hasattr(o, "item"):  # numpy scalar
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


@dataclass
class Setting:
    """A run's setting; see the module docstring for every field."""

    model: str
    dataset: str
    protocol: str = "temporal"
    config: dict = field(default_factory=dict)
    preset: str | None = None
    overrides: dict = field(default_factory=dict)
    selected_by: str | None = None
    tie_order: str = "shuffle"
    tie_seed: int | None = 0
    test_sample: int = 0
    test_sample_seed: int = 0
    train_sample: int = 0
    train_sample_seed: int = 0
    label_fields: tuple = ()

    def __post_init__(self):
        self.config = _json(self.config or {})
        self.overrides = _json(self.overrides or {})
        self.label_fields = tuple(sorted(set(self.label_fields)))
        bad = set(self.label_fields) - set(LABEL_FIELDS)
        if bad:
            raise ValueError(f"label_fields {sorted(bad)} unknown; known: {LABEL_FIELDS}")
        if self.tie_order == "file":
            self.tie_seed = None
        missing = {k: v for k, v in self.overrides.items() if self.config.get(k, object()) != v}
        if missing:
            raise ValueError(f"{self.model}: overrides {missing} are not applied in config {self.config}")

    # ------------------------------------------------------------------ construction

    @classmethod
    def of(cls, model: str, split, *, preset: str | None = None, overrides: dict | None = None,
           config: dict | None = None, selected_by: str | None = None, label_fields=()) -> "Setting":
        """The setting of ``model`` evaluated on ``split``: protocol, dataset, tie order and
        samples come from the split (so they cannot disagree with it). ``config`` defaults to
        the preset's configuration with ``overrides`` on top."""
        overrides = dict(overrides or {})
        info = split.info
        protocol = split.protocol
        if config is None:
            config = {**preset_config(model, preset, dataset=str(info.get("dataset")), protocol=protocol), **overrides}
        return cls(model=model, dataset=str(info.get("dataset")), protocol=protocol, config=config,
                   preset=preset, overrides=overrides, selected_by=selected_by,
                   tie_order=info.get("tie_order", "shuffle"), tie_seed=info.get("tie_seed"),
                   test_sample=int(info.get("test_sample", 0)), test_sample_seed=int(info.get("test_sample_seed", 0)),
                   train_sample=int(info.get("train_sample", 0)),
                   train_sample_seed=int(info.get("train_sample_seed", 0)), label_fields=tuple(label_fields))

    @classmethod
    def from_dict(cls, d: dict) -> "Setting":
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown setting fields {sorted(unknown)}; known: {sorted(names)}")
        return cls(**{**d, "label_fields": tuple(d.get("label_fields", ()))})

    # ------------------------------------------------------------------ identity

    def to_dict(self) -> dict:
        d = asdict(self)
        d["label_fields"] = list(self.label_fields)
        return _json(d)

    @property
    def id(self) -> str:
        """Short hash of what the setting computes: every field but ``label_fields`` (how a row
        is labelled does not change a result, so a spread run at the default tie order reuses
        the main run). Seed and data are not part of it: those key the run file."""
        d = self.to_dict()
        del d["label_fields"]
        return short_hash(canonical_json(d))

    def matches(self, split) -> None:
        """Raise when this setting does not describe ``split`` (protocol, dataset, ties, samples)."""
        other = Setting.of(self.model, split, config=self.config)
        for name in ("dataset", "protocol", "tie_order", "tie_seed", "test_sample", "test_sample_seed",
                     "train_sample", "train_sample_seed"):
            if getattr(self, name) != getattr(other, name):
                raise ValueError(f"setting of {self.model} has {name}={getattr(self, name)!r} but the split has "
                                 f"{getattr(other, name)!r}; build it with Setting.of(model, split, ...)")

    # ------------------------------------------------------------------ label

    @property
    def label(self) -> str:
        """The summary row's label: what differs from the standard setting (module docstring)."""
        parts = []
        if "ties" in self.label_fields or (self.tie_order, self.tie_seed) != ("shuffle", 0):
            parts.append("tie_order=file" if self.tie_order == "file"
                         else f"tie_order={self.tie_order},tie_seed={self.tie_seed}")
        if "preset" in self.label_fields or (self.selected_by is None and self.preset is not None
                                             and self.preset != standard_preset(self.model, self.protocol)):
            parts.append(f"preset={self.preset}")
        parts += [f"{k}={_label_value(v)}" for k, v in sorted(self.overrides.items())]
        for name, n, seed in (("train_sessions", self.train_sample, self.train_sample_seed),
                              ("test_sessions", self.test_sample, self.test_sample_seed)):
            if n:
                parts.append(f"{name}={n}" + (f"@{seed}" if seed else ""))
        return ",".join(parts)


def split_label(split, ties: bool = True) -> str:
    """The label parts a split contributes to every setting on it (tie order unless ``ties`` is
    False, samples): e.g. to name files of per-split artifacts so other splits never overwrite them."""
    s = Setting.of("", split)
    if not ties:
        s.tie_order, s.tie_seed = "shuffle", 0
    return s.label


def _label_value(v) -> str:
    """Python's spelling of a JSON value (True, None, 0.001, [1, 2]) as the labels always had."""
    return str(v)


__all__ = ["LABEL_FIELDS", "STANDARD_PRESETS", "Setting", "split_label", "standard_preset"]
