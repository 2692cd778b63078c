"""TF Serving exports: the SavedModel writer (:mod:`.savedmodel`), the serving contract
(:mod:`.contract`), the target device (:mod:`.device`), the model-server folder layout
(:mod:`.layout`), verification in a TensorFlow-only process (:mod:`.verify`), warmup requests
(:mod:`.warmup`) and TFLite/ONNX conversion (:mod:`.formats`).
"""

from lstm_zoo.serving.savedmodel import ExportResult, export

__all__ = ["ExportResult", "export"]
