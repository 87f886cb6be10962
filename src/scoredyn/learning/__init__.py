"""Learning a score field: objectives and time samplers, networks, the trainer (EMA, mixed precision,
checkpoints, exact resume, DDP), typed configuration, data sets, and run folders."""

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
    vlb_terms,
)
from .nets import EGNN, MLP, NETS, FourierEmbedding, SinusoidalEmbedding, UNet, build_net
from .trainer import TrainedModel, Trainer, TrainingDiverged, TrainResult, export_model, load_trained, read_run

__all__ = [
    "latest_checkpoint", "load_checkpoint", "optimizer_state_from_tensors", "optimizer_state_to_tensors",
    "restore_rng", "rng_state_tensors", "save_checkpoint",
    "DataConfig", "ModelConfig", "ObjectiveConfig", "OptimConfig", "RunConfig", "TrainConfig",
    "apply_overrides", "config_from_dict", "config_to_dict", "dump_toml", "load_toml", "validate",
    "DATASETS", "Dataset", "load_dataset",
    "OBJECTIVE_NAMES", "OBJECTIVES", "DiscreteTime", "ImportanceTime", "LogNormalTime", "Objective",
    "TimeSampler", "UniformTime", "make_objective", "vlb_terms",
    "EGNN", "MLP", "NETS", "FourierEmbedding", "SinusoidalEmbedding", "UNet", "build_net",
    "TrainedModel", "Trainer", "TrainingDiverged", "TrainResult", "export_model", "load_trained", "read_run",
]
