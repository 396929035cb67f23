"""Model-from-code entry point that MLflow loads for a leadlink pyfunc model.

MLflow stores this file with each logged model and runs it on load, instead
of unpickling a Python object, so loading a model never executes pickled code.
"""

import mlflow

from leadlink.serving.model import LeadScoringPyfunc

mlflow.models.set_model(LeadScoringPyfunc())
