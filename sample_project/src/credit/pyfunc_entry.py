"""MLflow "models from code" entry point: executed when the model is loaded."""

from mlflow.models import set_model

from credit.serving import CreditModel

set_model(CreditModel())
