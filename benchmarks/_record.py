"""The scripts' import of the package's record helpers (``scoredyn.app.bench.record``)."""

from scoredyn.app.bench.record import CHECKOUT_RESULTS as RESULTS  # noqa: F401
from scoredyn.app.bench.record import (  # noqa: F401
    best_time,
    device_name,
    merged,
    record,
    synchronize,
    versions,
    write,
)
