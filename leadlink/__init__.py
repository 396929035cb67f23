"""leadlink: B2B lead scoring that recognises people who used the product before."""

import os

__version__ = "0.1.0"

# MLflow sends usage telemetry unless told not to; leadlink runs offline by
# default, so opt out before any module imports mlflow. A user can still set
# these variables to other values in the environment.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
# leadlink's own logging set-up decides what MLflow may print, and artifact
# downloads are too quick to deserve a progress bar.
os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
