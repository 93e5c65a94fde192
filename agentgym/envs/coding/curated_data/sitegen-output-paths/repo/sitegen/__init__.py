from .paths import output_path
from .build import plan_build

__all__ = ["output_path", "plan_build"]
