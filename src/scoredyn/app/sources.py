"""What ``sample`` draws from: an exact mixture or a trained model, behind one interface.

A source gives its field on a process, the start distribution of a kind, and its field guided towards
a class. ``as_source`` is the one place that asks which kind of source it was given; the sampling
code never does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from ..core.fields import (
    AnalyticField,
    ClassifierFreeGuidance,
    ClassifierGuidance,
    Field,
    mixture_classifier,
    on_process,
)
from ..core.processes import Process
from ..core.targets import GaussianMixture
from ..learning import TrainedModel
from ..samplers import start_distribution

__all__ = ["Source", "ExactSource", "TrainedSource", "as_source"]


class Source(Protocol):
    """Where samples come from (``ExactSource``, ``TrainedSource``)."""

    label: str  # what the settings call it
    dim: int
    trained: bool

    def field(self, process: Process, compile: bool | str = False) -> Field: ...

    def start(self, kind: str, process: Process, t: Tensor) -> GaussianMixture: ...

    def default_start(self, recipe_start: str) -> str: ...

    def guided(self, field: Field, process: Process, label: int, weight: float) -> Field: ...

    def to_data(self, x: Tensor) -> Tensor: ...


@dataclass
class ExactSource:
    """An exact mixture: its exact field on any process, its exact ``p_t`` as a start, and classifier
    guidance with the exact noisy classifier of its components (the classes)."""

    target: GaussianMixture
    trained = False

    @property
    def label(self) -> str:
        return self.target.name

    @property
    def dim(self) -> int:
        return self.target.dim

    def field(self, process: Process, compile: bool | str = False) -> Field:
        return AnalyticField(self.target, process)

    def start(self, kind: str, process: Process, t: Tensor) -> GaussianMixture:
        return start_distribution(kind, process, t, target=self.target)

    def default_start(self, recipe_start: str) -> str:
        return recipe_start

    def guided(self, field: Field, process: Process, label: int, weight: float) -> Field:
        k = self.target.n_components
        if not 0 <= label < k:
            raise ValueError(f"class must be a component index in 0..{k - 1}, got {label}")
        return ClassifierGuidance(field, mixture_classifier(self.target, process), label, weight)

    def to_data(self, x: Tensor) -> Tensor:
        """The field's coordinates are the target's own."""
        return x


@dataclass
class TrainedSource:
    """A trained model: its field read on any process at equal SNR, starts from the training data's
    moments (there is no exact ``p_T``), classifier-free guidance for a class-conditional model."""

    model: TrainedModel
    trained = True

    @property
    def label(self) -> str:
        return f"checkpoint:{self.model.directory}"

    @property
    def dim(self) -> int:
        return self.model.field_dim

    def field(self, process: Process, compile: bool | str = False) -> Field:
        own = self.model.field
        return on_process(own.with_options(compile=compile) if compile else own, process)

    def start(self, kind: str, process: Process, t: Tensor) -> GaussianMixture:
        if kind == "exact":
            raise ValueError("start 'exact' needs an exact target; a trained model starts from 'moments'")
        return start_distribution(kind, process, t, target=self.model.moments_law(), dim=self.dim)

    def default_start(self, recipe_start: str) -> str:
        return "moments" if recipe_start == "exact" else recipe_start

    def guided(self, field: Field, process: Process, label: int, weight: float) -> Field:
        classes = int(self.model.info["num_classes"])
        if classes == 0:
            raise ValueError("class guidance needs a class-conditional model (trained with model.conditional=true)")
        if not 0 <= label < classes:
            raise ValueError(f"class must be in 0..{classes - 1}, got {label}")
        own = self.model.field
        cond = own.with_options(labels=torch.tensor(label), compile=False)
        return on_process(ClassifierFreeGuidance(cond, own, weight), process)

    def to_data(self, x: Tensor) -> Tensor:
        """The model's points in the data's coordinates (a data file's standardization undone)."""
        return self.model.to_data(x)


def as_source(obj: GaussianMixture | TrainedModel) -> Source:
    """``obj`` as a source: an exact ``GaussianMixture`` or a ``TrainedModel`` (``learning.load_trained``)."""
    if isinstance(obj, GaussianMixture):
        return ExactSource(obj)
    if isinstance(obj, TrainedModel):
        return TrainedSource(obj)
    raise ValueError(f"can sample an exact GaussianMixture or a trained model, got {type(obj).__name__}")
