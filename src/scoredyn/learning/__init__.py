"""Learning a score field: objectives and time samplers (``losses``), networks (``nets``), the trainer
(EMA, mixed precision, exact resume; ``trainer``, ``distributed``, ``checkpoints``), typed configuration
(``config``), data sets (``data``), and run folders (``runs``)."""

from .checkpoints import (
    latest_checkpoint,
    load_checkpoint,
    optimizer_state_from_tensors,
    optimizer_state_to_tensors,
    restore_rng,
    rng_state_tensors,
    save_checkpoint,
)
from .config import (
    DataConfig,
    ModelConfig,
    ObjectiveConfig,
    OptimConfig,
    RunConfig,
    TrainConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    dump_toml,
    load_toml,
    validate,
)
from .data import DATASETS, Dataset, load_dataset
from .datafiles import DATA_SUFFIXES, is_data_file, read_points
from .losses import (
    OBJECTIVE_NAMES,
    OBJECTIVES,
    DiscreteTime,
    ImportanceTime,
    LogNormalTime,
    Objective,
    TimeSampler,
    UniformTime,
    make_objective,
)
from .nets import EGNN, MLP, NETS, FourierEmbedding, SinusoidalEmbedding, UNet, build_net
from .runs import TrainedModel, export_model, load_trained, read_run
from .trainer import Trainer, TrainingDiverged, TrainResult

__all__ = [
    "latest_checkpoint", "load_checkpoint", "optimizer_state_from_tensors", "optimizer_state_to_tensors",
    "restore_rng", "rng_state_tensors", "save_checkpoint",
    "DataConfig", "ModelConfig", "ObjectiveConfig", "OptimConfig", "RunConfig", "TrainConfig",
    "apply_overrides", "config_from_dict", "config_to_dict", "dump_toml", "load_toml", "validate",
    "DATASETS", "Dataset", "load_dataset", "DATA_SUFFIXES", "is_data_file", "read_points",
    "OBJECTIVE_NAMES", "OBJECTIVES", "DiscreteTime", "ImportanceTime", "LogNormalTime", "Objective",
    "TimeSampler", "UniformTime", "make_objective",
    "EGNN", "MLP", "NETS", "FourierEmbedding", "SinusoidalEmbedding", "UNet", "build_net",
    "TrainedModel", "Trainer", "TrainingDiverged", "TrainResult", "export_model", "load_trained", "read_run",
]
