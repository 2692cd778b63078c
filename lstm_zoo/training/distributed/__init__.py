"""Data-parallel training of one model across processes (``MultiWorkerMirroredStrategy``):
``TF_CONFIG`` handling (:mod:`.config`), the custom training loop (:mod:`.loop`), how batches
reach the workers (:mod:`.input`) and the global-batch loss (:mod:`.losses`).

Arrows run one way: ``loop`` uses ``input`` and ``losses``, which use only ``config``.
"""
