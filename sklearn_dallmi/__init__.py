"""DALLMi for scikit-learn: domain adaptation of multi-label text classifiers
from partially labelled data."""

from . import metrics
from .classifier import DALLMiClassifier

__version__ = "0.1.0"

__all__ = ["DALLMiClassifier", "metrics", "__version__"]
