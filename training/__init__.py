"""Training sets, LightGBM training, evaluation, and MLflow tracking and registry."""
