"""Tables of the core. Import this package to register every model on ``Base.metadata``."""

from sync.models.area import Area
from sync.models.form import FormVersion

__all__ = ["Area", "FormVersion"]
