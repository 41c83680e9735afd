"""Python-backend ``model.py`` files that stand in for backends the bundled Triton lacks.

They are copied next to the user's model file in the locally staged copy (never into the
tarball) and run it on CPU. Triton's Python backend imports them, not this package.
"""

from pathlib import Path

ONNXRUNTIME = Path(__file__).with_name("onnxruntime_model.py")
TORCHSCRIPT = Path(__file__).with_name("torchscript_model.py")
# The staged config names the user's file here (the adapter itself is the version's model.py).
MODEL_FILE_PARAMETER = "MMEDEPLOY_ADAPTED_MODEL_FILE"
